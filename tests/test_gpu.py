"""Checks that need a CUDA device; skipped elsewhere (run them where the GPU is lent: pytest -m gpu)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from recipes.__main__ import main
from recipes.modules.optim import OptimizerConfig, create_optimizer
from tests import test_matrix
from tests.conftest import CONFIGS, QUIET, run_recipes
from tests.test_image_fit import last_metrics
from tests.test_matrix import RUNNABLE, _args, fit_evaluate_predict_resume
from tests.test_optim_reference import reference_adamw

# tests/test_matrix.py's session fixture, registered here under its own name for test_matrix_on_cuda
pretrained_image = test_matrix.pretrained_image

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_mixed_precision_fit_on_cuda(tmp_path, precision):
    args = [
        "fit",
        "--config",
        str(CONFIGS / "image_classification_digits.yaml"),
        *QUIET,
        "--trainer.accelerator",
        "gpu",
        "--trainer.devices",
        "1",
        "--trainer.precision",
        precision,
        "--trainer.default_root_dir",
        str(tmp_path),
    ]
    assert main(args) == 0
    assert last_metrics(tmp_path)["val/acc"] > 0.8


def test_fused_cuda_adamw_matches_paper():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.LayerNorm(64), nn.Linear(64, 8)).cuda()
    start = {id(p): p.detach().clone() for p in model.parameters()}
    opt = create_optimizer(model, OptimizerConfig(name="adamw", lr=0.01, weight_decay=0.1))
    assert all(g["fused"] for g in opt.param_groups)
    params = [p for g in opt.param_groups for p in g["params"]]
    grads = []
    for _ in range(10):
        opt.zero_grad()
        model(torch.randn(16, 32, device="cuda")).square().mean().backward()
        grads.append([p.grad.detach().clone() for p in params])
        opt.step()
    lrs = [g["lr"] for g in opt.param_groups for _ in g["params"]]
    wds = [g["weight_decay"] for g in opt.param_groups for _ in g["params"]]
    expected = reference_adamw([start[id(p)] for p in params], grads, lrs, wds)
    for p, e in zip(params, expected):
        torch.testing.assert_close(p.detach().double(), e, rtol=1e-5, atol=1e-6)


def _subprocess(args: list[str]) -> int:
    """Multi-GPU cells launch through Lightning's ``ddp`` (NCCL): a forked process cannot use CUDA."""
    proc = run_recipes(*args, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.returncode


@pytest.mark.parametrize("devices", [1, 2], ids=["1gpu", "ddp2"])
@pytest.mark.parametrize("precision", ["32-true", "16-mixed", "bf16-mixed"])
@pytest.mark.parametrize("name", RUNNABLE)
def test_matrix_on_cuda(
    name, precision, devices, tmp_path, pretrained_image, small_movielens, tiny_whisper, tiny_minilm
):
    """The CPU matrix (tests/test_matrix.py) on CUDA: fused kernels, 16-mixed with its GradScaler, NCCL."""
    if devices > torch.cuda.device_count():
        pytest.skip(f"NCCL DDP needs {devices} GPUs, this machine has {torch.cuda.device_count()}")
    root = tmp_path / "run"
    args = _args(
        name,
        root,
        precision,
        devices,
        accelerator="gpu",
        strategy="ddp",
        pretrained=pretrained_image,
        movielens=small_movielens,
        whisper=tiny_whisper,
        minilm=tiny_minilm,
    )
    fit_evaluate_predict_resume(args, root, devices, run=main if devices == 1 else _subprocess)
