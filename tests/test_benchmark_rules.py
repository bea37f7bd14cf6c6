"""AlgoPerf's rules without training: search spaces in its format, Halton trials, the factory adapter, the
self-tuning budget, the EMA example's swap, and the rule violations a suite is refused for."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from recipes.benchmark.ema_submission import AdamWEMA
from recipes.benchmark.search_space import halton, load_search_space, sample_trials, study_seed
from recipes.benchmark.submission import Budget, FactorySubmission, build_submission
from recipes.benchmark.suite import SubmissionSpec, Suite, Workload
from recipes.modules.errors import ConfigError
from tests.conftest import CONFIGS

FIXTURES = Path(__file__).parent / "fixtures"
SPACE = {
    "learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "log"},
    "weight_decay": {"min": 0.0, "max": 1.0, "scaling": "linear"},
    "batch": {"feasible_points": [16, 32, 64]},
}
LR_WD = {k: v for k, v in SPACE.items() if k != "batch"}


def test_plain_halton_is_the_radical_inverse_sequence():
    # bases 2, 3, 5: index i's digits in base b, mirrored about the radix point
    expected = [[0, 0, 0], [1 / 2, 1 / 3, 1 / 5], [1 / 4, 2 / 3, 2 / 5], [3 / 4, 1 / 9, 3 / 5], [1 / 8, 4 / 9, 4 / 5]]
    assert np.allclose(halton(5, 3, None), expected, rtol=0, atol=1e-15)


def test_points_map_onto_ranges_and_feasible_points():
    trials = sample_trials(SPACE, 3, seed=None)
    assert trials[1] == pytest.approx({"learning_rate": 1e-3, "weight_decay": 1 / 3, "batch": 16})  # u = .5, 1/3, .2
    assert trials[2] == pytest.approx({"learning_rate": 10**-3.5, "weight_decay": 2 / 3, "batch": 32})  # .25, 2/3, .4


def test_scrambled_halton_keeps_its_strata_and_differs_by_study():
    pts = halton(9, 2, seed=study_seed(0, 0))
    assert sorted(int(p[0] * 8) for p in pts[:8]) == list(range(8))  # one point in each 1/8 of dimension 0
    assert sorted(int(p[1] * 9) for p in pts[:9]) == list(range(9))  # one in each 1/9 of dimension 1 (base 3)
    assert halton(9, 2, seed=study_seed(0, 0)) == pts  # reproducible
    assert study_seed(0, 0) != study_seed(0, 1) and halton(9, 2, seed=study_seed(0, 1)) != pts
    # a study's trials are a prefix of its sequence: more trials keep the ones already run
    assert sample_trials(SPACE, 5, 7)[:3] == sample_trials(SPACE, 3, 7)


def test_algoperf_search_space_json_is_read_as_is():
    space = load_search_space(str(FIXTURES / "algoperf_tuning_search_space.json"))
    assert list(space) == [
        "learning_rate",
        "one_minus_beta1",
        "beta2",
        "warmup_factor",
        "weight_decay",
        "label_smoothing",
        "dropout_rate",
    ]
    trials = sample_trials(space, 5, study_seed(0, 0))
    assert len({t["learning_rate"] for t in trials}) == 5
    for t in trials:
        assert 1e-4 <= t["learning_rate"] <= 1e-2 and 2e-2 <= t["one_minus_beta1"] <= 0.5
        assert 5e-3 <= t["weight_decay"] <= 1.0 and t["beta2"] == 0.999 and t["warmup_factor"] == 0.05
        assert t["label_smoothing"] in (0.1, 0.2) and t["dropout_rate"] in (0.0, 0.1)
    # the same space as YAML reads the same


def test_the_same_space_in_yaml_reads_the_same(tmp_path):
    import yaml

    space = load_search_space(str(FIXTURES / "algoperf_tuning_search_space.json"))
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    assert load_search_space(str(tmp_path / "space.yaml")) == space


def test_algoperf_list_of_points_is_sampled_without_replacement():
    points = json.loads((FIXTURES / "algoperf_tuning_search_space_points.json").read_text())
    space = load_search_space(str(FIXTURES / "algoperf_tuning_search_space_points.json"))
    trials = sample_trials(space, 3, study_seed(0, 0))
    assert len(trials) == 3 and all(t in points for t in trials) and len({json.dumps(t) for t in trials}) == 3
    assert sample_trials(space, 3, study_seed(0, 1)) != trials  # another study, another draw
    with pytest.raises(ConfigError, match="lists 5 points but a study runs 6 trials"):
        sample_trials(space, 6, 0)


@pytest.mark.parametrize(
    "space, message",
    [
        ({"lr": {"min": 0.0, "max": 1.0, "scaling": "log"}}, "a log range needs min > 0"),
        ({"lr": {"min": 1.0, "max": 0.1, "scaling": "linear"}}, "min <= max"),
        ({"lr": {"min": 1e-3, "max": 0.1, "scaling": "cubic"}}, "scaling 'cubic'"),
        ({"lr": {"feasible_points": []}}, "feasible_points is empty"),
        ({"lr": {"low": 1}}, "'lr' has keys ['low']"),
        ([{"lr": 1}, {"wd": 2}], "point 1 has keys"),
    ],
)
def test_bad_search_spaces_are_named(space, message):
    with pytest.raises(ConfigError) as info:
        load_search_space(space)
    assert message in str(info.value) and str(info.value).count("Fix:") == 1


def test_factory_adapter_maps_algoperf_names():
    sub = FactorySubmission(
        {"name": "adamw"},
        {"name": "cosine"},
        learning_rate=3e-3,
        one_minus_beta1=0.2,
        beta2=0.99,
        epsilon=1e-6,
        warmup_factor=0.05,
        **{"kwargs.amsgrad": True, "model.label_smoothing": 0.1},
    )
    over = sub.task_overrides(Budget("w", 100, 1.0))
    opt = over["model.optimizer"]
    assert opt["lr"] == 3e-3 and opt["betas"] == pytest.approx((0.8, 0.99)) and opt["eps"] == 1e-6
    assert opt["kwargs"] == {"amsgrad": True} and over["model.scheduler"]["warmup_fraction"] == 0.05
    assert over["model.label_smoothing"] == 0.1
    # beta2 alone keeps the optimizer's own beta1 (Lion's default betas are (0.9, 0.99))
    lion = FactorySubmission({"name": "lion"}, beta2=0.98).task_overrides(Budget("w", 1, 1.0))
    assert lion["model.optimizer"]["betas"] == pytest.approx((0.9, 0.98))


@pytest.mark.parametrize(
    "hp, message",
    [
        ({"dropout_rate": 0.1}, "no hyperparameter 'dropout_rate'"),
        ({"warmup_factor": 0.05}, "sets the schedule, but the submission keeps the task's schedule"),
        ({"momentom": 0.9}, "no hyperparameter 'momentom'"),
        ({"learning_rate": 0.1}, "sets lr, which the submission fixes"),
        ({"beta2": 0.9}, "sets betas[1], which the submission fixes"),
        ({"beta1": 0.9, "one_minus_beta1": 0.1}, "sets betas[0], which 'beta1' also sets"),
        ({"model.optimizer.lr": 0.1}, "would be overwritten"),
    ],
)
def test_factory_adapter_refuses_what_it_cannot_apply(hp, message):
    fixed = {"lr": 0.5} if "learning_rate" in hp else {"betas": [0.9, 0.95]} if "beta2" in hp else {}
    with pytest.raises(ConfigError) as info:
        FactorySubmission({"name": "adamw", **fixed}, **hp)
    assert message in str(info.value)


def _workload(**kw) -> Workload:
    base = dict(
        name="regression",
        config=str(CONFIGS / "regression.yaml"),
        metric="val/dist_to_opt",
        mode="min",
        target=0.1,
        max_steps=101,
        max_runtime=2.0,
    )
    return Workload(**{**base, **kw})


def test_self_tuning_runs_once_per_study_on_a_longer_budget():
    suite = Suite(
        name="s",
        ruleset="self_tuning",
        studies=3,
        workloads=[_workload()],
        submissions=[SubmissionSpec(label="adamw", optimizer={"name": "adamw", "lr": 0.01})],
    )
    runs = suite.runs()
    assert [(r.study, r.trial) for r in runs] == [(0, 0), (1, 0), (2, 0)]
    assert {(r.workload.max_steps, r.workload.max_runtime) for r in runs} == {(152, 3.0)}  # ceil(1.5 * 101), 1.5 * 2
    assert len({r.seed for r in runs}) == 3
    assert all(r.hyperparameters == {} and r.optimizer["lr"] == 0.01 for r in runs)
    factor2 = Suite(**{**suite.__dict__, "self_tuning_budget_factor": 2.0}).runs()
    assert {r.workload.max_steps for r in factor2} == {202} and {r.key for r in factor2}.isdisjoint(r.key for r in runs)


def test_external_tuning_draws_trials_per_study():
    suite = Suite(
        name="s",
        studies=2,
        trials=3,
        workloads=[_workload()],
        submissions=[SubmissionSpec(label="adamw", optimizer={"name": "adamw"}, search_space=LR_WD)],
    )
    runs = suite.runs()
    assert [(r.study, r.trial) for r in runs] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    lrs = [r.optimizer["lr"] for r in runs]
    assert len(set(lrs)) == 6 and all(1e-4 <= lr <= 1e-2 for lr in lrs)
    assert [r.lr for r in runs] == lrs and len({r.key for r in runs}) == 6 and len({r.seed for r in runs}) == 6


@pytest.mark.parametrize(
    "spec, ruleset, message",
    [
        (dict(optimizer={"name": "adamw"}, per_workload={"regression": {"lr": 1}}), "external_tuning", "hand tuning"),
        (dict(optimizer={"name": "adamw"}, lr_grid=[0.1, 1.0]), "external_tuning", "hand tuning"),
        (dict(optimizer={"name": "adamw"}), "external_tuning", "needs a search space"),
        (dict(optimizer={"name": "adamw"}, search_space=SPACE), "self_tuning", "allows no search space"),
        (
            dict(optimizer={"name": "adamw"}, search_space={"batch": {"feasible_points": [8]}}),
            "external_tuning",
            "'batch'",
        ),
        (dict(submission="collections.OrderedDict.nope", search_space={}), "external_tuning", "cannot be imported"),
    ],
)
def test_rule_violations_are_refused(spec, ruleset, message):
    with pytest.raises(ConfigError) as info:
        Suite(name="s", ruleset=ruleset, workloads=[_workload()], submissions=[SubmissionSpec(label="adamw", **spec)])
    assert message in str(info.value)
    with pytest.raises(ConfigError, match="max_runtime must be > 0"):
        Suite(
            name="s",
            workloads=[_workload(max_runtime=0.0)],
            submissions=[SubmissionSpec(label="adamw", search_space={})],
        )


def test_ema_submission_swaps_the_average_in_for_evaluation_and_back():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    sub = build_submission("recipes.benchmark.ema_submission.AdamWEMA", {}, {"ema_decay": 0.99, "learning_rate": 0.1})
    assert isinstance(sub, AdamWEMA) and sub.task_overrides(Budget("w", 1, 1.0))["model.optimizer"]["name"] == "adamw"
    history = []
    for _ in range(5):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        history.append([p.detach().clone() for p in net.parameters()])
        sub.on_train_step_end(net)
    # the average, recomputed independently: it starts at the first step's weights, then the t-th update
    # (t = 1, 2, ...) uses the warm-up decay min(0.99, (1 + t) / (10 + t))
    ema, plain = [p.clone() for p in history[0]], [p.clone() for p in history[0]]
    for t, params in enumerate(history[1:], start=1):
        d = min(0.99, (1 + t) / (10 + t))
        ema = [d * e + (1 - d) * p for e, p in zip(ema, params)]
        plain = [0.99 * e + 0.01 * p for e, p in zip(plain, params)]
    assert not torch.allclose(ema[0], plain[0], atol=1e-3)  # the warm-up matters over these 5 steps
    live = [p.detach().clone() for p in net.parameters()]
    sub.prepare_for_eval(net)
    for p, e in zip(net.parameters(), ema):
        assert torch.allclose(p, e, atol=1e-6)
    sub.after_eval(net)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), live))
    assert math.isclose(sub.ema_decay, 0.99)


def test_list_spaces_keep_their_prefix_and_labels_key_their_trials():
    points = [{"learning_rate": 10.0**-k} for k in range(30)]
    for seed in range(20):
        assert sample_trials(points, 6, seed)[:5] == sample_trials(points, 5, seed)
    same = {"optimizer": {"name": "adamw", "lr": 0.01}, "search_space": {}}
    suite = Suite(
        name="s",
        studies=1,
        trials=1,
        workloads=[_workload()],
        submissions=[SubmissionSpec(label="a", **same), SubmissionSpec(label="b", **same)],
        baseline="a",
    )
    a, b = suite.runs()
    assert a.optimizer == b.optimizer and a.key != b.key  # a second label is a second submission, trained too


def _algoperf_reference(n: int, bases: list[int], seed: int | None) -> np.ndarray:
    """AlgoPerf's ``generate_sequence`` points, from its published algorithm in the closed form that holds while
    every point index (101 .. 100 + n) is below every base: one digit, u = (perm_p[i] / p + shift_p) mod 1, where
    ``RandomState(p)`` shuffles 1..p-1 and then draws the shift; the rows are shuffled by ``RandomState(seed)``."""
    columns = []
    for p in bases:
        rng = np.random.RandomState(p)
        perm = np.arange(1, p)
        rng.shuffle(perm)
        shift = rng.random_sample()
        columns.append([(perm[i - 1] / p + shift) % 1.0 for i in range(101, 101 + n)])
    points = np.array(columns).T
    if seed is not None:
        np.random.RandomState(seed).shuffle(points)
    return points


def test_algoperf_sequence_gives_algoperf_points():
    from recipes.benchmark.search_space import algoperf_bases, algoperf_halton

    assert algoperf_bases(1) == [991] and algoperf_bases(2) == [983, 991] and algoperf_bases(3) == [977, 983, 991]
    assert algoperf_bases(166)[0] == 3 and algoperf_bases(166)[-1] == 991  # 167 odd primes below 1000
    assert algoperf_bases(167)[-1] == 1997  # one more: below 2000
    for seed in (None, 0, study_seed(0, 2)):
        got = np.array(algoperf_halton(15, 2, seed))
        assert np.allclose(got, _algoperf_reference(15, [983, 991], seed), rtol=0, atol=1e-15)
    # the seed orders the points and nothing else, as AlgoPerf's unseeded shuffle does
    assert sorted(map(tuple, algoperf_halton(15, 2, 1))) == sorted(map(tuple, algoperf_halton(15, 2, 2)))
    points = sample_trials(LR_WD, 5, 7, sequence="algoperf")
    u = _algoperf_reference(5, [983, 991], 7)
    assert [p["learning_rate"] for p in points] == pytest.approx(1e-4 * 100.0 ** u[:, 0], rel=1e-12)
    assert [p["weight_decay"] for p in points] == pytest.approx(u[:, 1], rel=1e-12)
    listed = [{"learning_rate": 0.1}, {"learning_rate": 0.2}, {"learning_rate": 0.3}]
    assert sample_trials(listed, 2, 7, sequence="algoperf") == listed[:2]  # AlgoPerf takes the first, in order
