"""The image transfer path with the package's own checkpoints: a short real pretraining fit writes a
checkpoint, a fine-tune starts from it with a new head, and the fine-tuned model reloads without it."""

from __future__ import annotations

import shutil
from pathlib import Path

import lightning as L
import pytest
import torch
import torchvision

from recipes.__main__ import main
from recipes.data.image.datamodule import DigitsDataModule
from recipes.modules.errors import RecipeError
from recipes.modules.image.classifier import ImageClassifier
from recipes.modules.image.weights import load_image_weights
from recipes.modules.init import InitConfig, apply_init
from recipes.modules.optim import OptimizerConfig
from recipes.modules.pretrained import FinetuneConfig
from tests.conftest import run_recipes
from tests.test_image_fit import DIGITS, last_metrics

SMALL = {"net": "cnn", "net_kwargs": {"widths": [16, 32]}, "image_size": 8}  # the digits config's network


@pytest.fixture(scope="module")
def pretrained_ckpt(tmp_path_factory) -> Path:
    """A real recipes checkpoint: the digits config fitted for two epochs through the CLI."""
    root = tmp_path_factory.mktemp("pretrain")
    assert main(["fit", *DIGITS, "--trainer.default_root_dir", str(root), "--trainer.max_epochs", "2"]) == 0
    return root / "checkpoints" / "last.ckpt"


def _net_state(ckpt: Path) -> dict[str, torch.Tensor]:
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    return {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}


class _AtStart(L.Callback):
    def on_train_start(self, trainer, pl_module):
        self.state = {k: v.clone() for k, v in pl_module.net.state_dict().items()}


def test_finetune_loads_the_backbone_and_starts_a_new_head(pretrained_ckpt, tmp_path):
    torch.manual_seed(1)
    model = ImageClassifier(
        **SMALL,
        pretrained=str(pretrained_ckpt),
        new_head=True,
        finetune=FinetuneConfig(freeze_steps=5),
        optimizer=OptimizerConfig(lr=0.01),
    )
    fresh_head = {k: v.clone() for k, v in model.net.head.state_dict().items()}
    at_start = _AtStart()
    trainer = L.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[at_start],
    )
    trainer.fit(model, DigitsDataModule())
    ckpt = _net_state(pretrained_ckpt)
    backbone = [k for k in ckpt if not k.startswith("head.")]
    assert len(backbone) == 12 and all(
        torch.equal(at_start.state[k], ckpt[k]) for k in backbone
    )  # step 0: the checkpoint's tensors
    assert torch.equal(at_start.state["head.2.weight"], fresh_head["2.weight"])  # the head as the init factory left it
    assert not torch.equal(at_start.state["head.2.weight"], ckpt["head.2.weight"])
    assert model.net.features.is_pretrained and not getattr(model.net.head[2], "is_pretrained", False)
    assert trainer.validate(model, DigitsDataModule(), verbose=False)[0]["val/acc"] > 0.85


def test_other_class_count_gets_a_new_head_and_init_spares_the_backbone(pretrained_ckpt):
    model = ImageClassifier(**SMALL, num_classes=4)
    report = load_image_weights(model.net, str(pretrained_ckpt))
    assert report.skipped == ["head.2.weight", "head.2.bias"] and not report.missing and not report.unused
    assert len(report.loaded) == len(_net_state(pretrained_ckpt)) - 2
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    apply_init(model.net, InitConfig(name="normal", std=0.3))
    after = model.net.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in report.loaded)  # loaded tensors: bit for bit
    assert (
        not torch.equal(after["head.2.weight"], before["head.2.weight"])
        and torch.count_nonzero(after["head.2.bias"]) == 0
    )


def test_plain_state_dict_formats_and_torchvision_cache(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    source = ImageClassifier(net="resnet18", num_classes=3, image_size=8)
    torch.save(source.net.net.state_dict(), tmp_path / "tv_keys.pth")  # torchvision's own key names
    save_file(
        {k: v.contiguous() for k, v in source.state_dict().items()}, str(tmp_path / "module.safetensors")
    )  # under net.
    for name in ("tv_keys.pth", "module.safetensors"):
        target = ImageClassifier(net="resnet18", num_classes=5, image_size=8)
        report = load_image_weights(target.net, str(tmp_path / name))
        assert len(report.loaded) == 120 and report.skipped == ["net.fc.weight", "net.fc.bias"], name
        assert torch.equal(target.net.net.layer4[1].conv2.weight, source.net.net.layer4[1].conv2.weight)

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    model = ImageClassifier(net="resnet18", pretrained="torchvision:IMAGENET1K_V1")
    with pytest.raises(
        RecipeError, match=f"not in torchvision's cache: no {tmp_path}/torch_home/hub/checkpoints/resnet18-f37072fd.pth"
    ):
        model.load_pretrained_weights()
    # a file in the cache is used (random weights of the right layout stand in for ImageNet's here)
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    imagenet_like = torchvision.models.resnet18().state_dict()
    torch.save(imagenet_like, cache / "resnet18-f37072fd.pth")
    report = load_image_weights(model.net, "torchvision:DEFAULT")
    assert report.skipped == ["net.conv1.weight", "net.fc.weight", "net.fc.bias"]  # 3-channel 7x7 stem, 1000 classes
    assert torch.equal(model.net.net.layer1[0].conv1.weight, imagenet_like["layer1.0.conv1.weight"])


@pytest.mark.parametrize(
    ("pretrained", "message"),
    [
        ("missing.ckpt", "recipes: pretrained checkpoint {tmp}/missing.ckpt does not exist. Fix: "),
        ("weights.txt", "recipes: pretrained '{tmp}/weights.txt' is neither torchvision:<WEIGHTS> nor a"),
        (
            "torchvision:IMAGENET1K_V1",
            "recipes: torchvision:IMAGENET1K_V1 needs a torchvision architecture, and SmallCNN is not one",
        ),
    ],
)
def test_bad_pretrained_is_one_line_and_exit_2(tmp_path, capsys, pretrained, message):
    value = pretrained if ":" in pretrained else str(tmp_path / pretrained)
    code = main(["fit", *DIGITS, "--trainer.default_root_dir", str(tmp_path / "run"), "--model.pretrained", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith(message.format(tmp=tmp_path)), err[-3:]
    assert not any("Traceback" in line for line in err)


def test_finetuned_checkpoint_reloads_without_the_pretraining_file(pretrained_ckpt, tmp_path):
    pre = tmp_path / "pre.ckpt"
    shutil.copy(pretrained_ckpt, pre)
    root = tmp_path / "finetune"
    args = [
        *DIGITS,
        "--trainer.default_root_dir",
        str(root),
        "--model.pretrained",
        str(pre),
        "--model.new_head",
        "true",
        "--model.finetune.freeze_steps",
        "5",
    ]
    assert main(["fit", *args, "--trainer.max_epochs", "1"]) == 0
    assert last_metrics(root)["val/acc"] > 0.85
    pre.unlink()  # the fine-tuned checkpoints hold every weight: nothing reads the pretraining file again
    assert main(["test", *args, "--ckpt_path", "best"]) == 0
    assert last_metrics(root)["test/acc"] > 0.85
    assert main(["fit", *args, "--trainer.max_epochs", "2", "--ckpt_path", "last"]) == 0  # resuming
    assert last_metrics(root)["epoch"] == 1
    reloaded = ImageClassifier.load_from_checkpoint(root / "checkpoints" / "last.ckpt")
    assert reloaded.hparams.pretrained == str(pre) and reloaded.hparams.finetune["freeze_steps"] == 5


def test_ddp_finetune_with_frozen_steps(pretrained_ckpt, tmp_path):
    out = run_recipes(
        "fit",
        *DIGITS,
        "--trainer.default_root_dir",
        str(tmp_path),
        "--trainer.accelerator",
        "cpu",
        "--trainer.strategy",
        "ddp_find_unused_parameters_true",
        "--trainer.devices",
        "2",
        "--trainer.max_epochs",
        "1",
        "--model.pretrained",
        str(pretrained_ckpt),
        "--model.new_head",
        "true",
        "--model.finetune.freeze_steps",
        "4",
        "--checkpoint.monitor",
        "null",
        "--checkpoint.save_top_k",
        "-1",
        "--checkpoint.every_n_train_steps",
        "4",
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert (
        "loaded 12 tensors, skipped 2" in log
        and "froze 6 tensors under net.features" in log
        and "unfroze 6 tensors" in log
    )
    assert (
        "`Trainer.fit` stopped: `max_epochs=1` reached" in log
    )  # 11 steps: 1,300 images, 64 a batch per process, 2 processes
    ckpts = tmp_path / "checkpoints"
    at_4, at_8 = (_net_state(next(ckpts.glob(f"*step={n}.ckpt"))) for n in (4, 8))
    pre = _net_state(pretrained_ckpt)
    weights = [k for k in pre if k.endswith("weight") and not k.startswith("head.")]
    assert all(torch.equal(at_4[k], pre[k]) for k in weights)  # 4 frozen steps on both processes: untouched
    assert not any(torch.equal(at_8[k], pre[k]) for k in weights)  # trained after unfreezing
    assert not torch.equal(at_4["head.2.weight"], pre["head.2.weight"])


def test_small_vit_layer_decay_and_backbone():
    from recipes.modules.optim import create_optimizer
    from recipes.modules.pretrained import set_requires_grad

    model = ImageClassifier(net="vit", image_size=8)
    d, lr = 0.5, 1e-3
    opt = create_optimizer(model, OptimizerConfig(lr=lr, layer_decay=d, layer_decay_root="net.encoder.layers"))
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    wd_of = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    vit, n = model.net, len(model.net.encoder.layers)
    assert n == 4 and lr_of[id(vit.class_token)] == pytest.approx(lr * d ** (n + 1)) and wd_of[id(vit.class_token)] == 0
    assert [lr_of[id(layer.mlp[0].weight)] for layer in vit.encoder.layers] == pytest.approx(
        [lr * d ** (n - i) for i in range(n)]
    )
    assert lr_of[id(vit.heads.head.weight)] == lr and wd_of[id(vit.encoder.pos_embedding)] == 0
    assert model.backbone_prefixes() == ["net.class_token", "net.conv_proj", "net.encoder"]
    frozen = set_requires_grad(model, model.backbone_prefixes(), False)
    assert frozen == len(list(model.parameters())) - 2  # all but the head's weight and bias
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
