"""``model.compile``: a compiled network trains, its checkpoints keep the uncompiled keys (they load into an
uncompiled model and back, strictly), and it resumes exactly from an uncompiled run's checkpoint. The tests compile
with dynamo's ``eager`` backend (the same tracing, no code generation: seconds, not minutes);
``benchmarks/compile.py`` measures TorchInductor."""

from __future__ import annotations

import pytest
import torch

from recipes.__main__ import main
from recipes.modules.compile import compile_network
from recipes.modules.errors import RecipeError
from recipes.modules.image.classifier import ImageClassifier
from tests.conftest import CONFIGS, QUIET

EAGER = ["--model.compile", "{backend: eager, dynamic: false}"]


def test_compiled_fit_checkpoints_load_both_ways_and_resume(tmp_path):
    args = ["--config", str(CONFIGS / "image_classification_digits.yaml"), *QUIET, "--trainer.max_epochs", "1"]
    plain, compiled = tmp_path / "plain", tmp_path / "compiled"
    assert main(["fit", *args, "--trainer.default_root_dir", str(compiled), *EAGER]) == 0
    assert main(["fit", *args, "--trainer.default_root_dir", str(plain)]) == 0
    a = torch.load(compiled / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(plain / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["state_dict"].keys() == b["state_dict"].keys() and not any("_orig_mod" in k for k in a["state_dict"])
    shape = {k: a["hyper_parameters"][k] for k in ("net", "net_kwargs", "num_classes", "image_size", "in_channels")}
    model = ImageClassifier(**shape, compile={"backend": "eager"})
    compile_network(model.net, {"backend": "eager"})
    uncompiled = ImageClassifier(**shape)
    uncompiled.load_state_dict(a["state_dict"])  # compiled -> uncompiled, strict
    model.load_state_dict(uncompiled.state_dict())  # and back
    x = torch.randn(4, 1, 8, 8)
    model.eval(), uncompiled.eval()
    assert torch.allclose(model(x), uncompiled(x), atol=1e-6)
    # an uncompiled run's checkpoint resumes compiled, and evaluates uncompiled
    assert (
        main(
            [
                "fit",
                *args,
                "--trainer.default_root_dir",
                str(plain),
                "--trainer.max_epochs",
                "2",
                *EAGER,
                "--ckpt_path",
                "last",
            ]
        )
        == 0
    )
    assert torch.load(plain / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2 * b["global_step"]
    assert main(["test", *args, "--trainer.default_root_dir", str(compiled), "--ckpt_path", "best"]) == 0


def test_bad_compile_settings_are_one_line():
    with pytest.raises(RecipeError, match="model.compile takes no modes"):
        ImageClassifier(compile={"modes": "max-autotune"})
    with pytest.raises(RecipeError, match="true, false or torch.compile's arguments"):
        ImageClassifier(compile="yes")
