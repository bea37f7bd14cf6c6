"""AdamW step time: the factory's AdamW against torch's default, foreach and fused AdamW, side by side.

    python benchmarks/optimizer_step.py [--device cuda]

A model of about 25M parameters in 100 tensors (50 Linear layers of 700x700 with biases); every
optimizer steps the same gradients; the table gives median milliseconds per step and ratios.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from benchmarks.common import median_ms, print_table
from recipes.modules.optim import OptimizerConfig, create_optimizer


def _model(device: str) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Linear(700, 700) for _ in range(50)]).to(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    builders = {
        "factory adamw (auto)": lambda m: create_optimizer(
            m, OptimizerConfig(name="adamw", lr=1e-3, weight_decay=0.01, decay_1d=True)
        ),
        "torch AdamW default": lambda m: torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.01),
        "torch AdamW foreach": lambda m: torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.01, foreach=True),
        "torch AdamW fused": lambda m: torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.01, fused=True),
    }
    model = _model(args.device)
    n_params = sum(p.numel() for p in model.parameters())
    n_tensors = len(list(model.parameters()))
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    results: dict[str, list[float]] = {name: [] for name in builders}
    opts = {name: build(model) for name, build in builders.items()}
    for _ in range(3):  # interleave rounds so drift on a shared machine hits every variant alike
        for name, opt in opts.items():
            results[name].append(median_ms(lambda: (opt.step(), sync()), args.repeats))
    med = {name: sorted(v)[len(v) // 2] for name, v in results.items()}
    fused = med["torch AdamW fused"]
    default = med["torch AdamW default"]
    rows = [[name, med[name], med[name] / fused, default / med[name]] for name in builders]
    print_table(
        f"AdamW step, {n_params / 1e6:.1f}M parameters in {n_tensors} tensors, {args.device}",
        ["implementation", "ms/step (median)", "x fused", "speedup vs default"],
        rows,
    )


if __name__ == "__main__":
    main()
