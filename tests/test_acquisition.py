"""ConcurrentNAS's batch choice: hypervolume improvement, its expectation, greedy EHVI batches, the
prequential model choice, and the tactic that puts them together (closed-form toy objectives)."""

import numpy as np
import pytest
from pymoo.indicators.hv import HV

from nastools.search import ConcurrentNAS, _tactic
from nastools.search import _models as models_module
from nastools.search._acquisition import expected_improvement, hypervolume_improvement, select_by_ehvi
from nastools.search._models import ObjectiveModel
from nastools.space import SearchSpace

REFERENCE = HV(ref_point=np.array([1.0, 1.0]))


def _hv(points: np.ndarray) -> float:
    inside = points[np.all(points < 1.0, axis=1)]
    return float(REFERENCE(inside)) if len(inside) else 0.0


def test_hypervolume_improvement_equals_the_difference_of_two_hypervolumes():
    rng = np.random.default_rng(0)
    for _ in range(20):
        front = rng.uniform(0.0, 1.1, size=(rng.integers(1, 8), 2))
        points = rng.uniform(-0.1, 1.1, size=(30, 2))
        expected = [_hv(np.vstack([front, np.clip(p, 0, None)])) - _hv(front) for p in points]
        np.testing.assert_allclose(hypervolume_improvement(front, points), expected, atol=1e-12)


def test_expected_improvement_is_the_mean_improvement_of_normal_draws():
    front = np.array([[0.2, 0.7], [0.5, 0.4], [0.8, 0.1]])
    mean = np.array([[0.55, 0.45], [0.3, 0.6], [0.9, 0.9]])
    std = np.array([[0.1, 0.0], [0.05, 0.08], [0.0, 0.0]])
    draws = np.random.default_rng(1).standard_normal((100_000, 1, 2)) * std + mean
    monte_carlo = np.array([hypervolume_improvement(front, draws[:, i]).mean() for i in range(len(mean))])
    np.testing.assert_allclose(expected_improvement(front, mean, std), monte_carlo, atol=2e-3)
    # certain points: the improvement itself (the last one is dominated: nothing)
    assert expected_improvement(front, mean[2:], std[2:])[0] == 0.0


def test_a_batch_picks_the_largest_improvement_first_then_spreads_out():
    validated = np.array([[0.0, 1.0], [1.0, 0.0]])
    # two near-identical promising candidates and one elsewhere on the front
    mean = np.array([[0.5, 0.5], [0.5001, 0.5001], [0.2, 0.8], [1.2, 1.2]])
    std = np.zeros_like(mean)
    chosen = select_by_ehvi(validated, mean, std, 2, np.random.default_rng(0))
    assert chosen[0] == 0 and chosen[1] == 2  # after the first pick, its twin adds nearly nothing


def test_a_batch_is_never_short_while_candidates_last():
    validated = np.array([[0.0, 0.0], [1.0, 1.0]])  # the first point dominates everything below
    mean = np.array([[0.5, 0.5], [0.6, 0.6], [0.7, 0.7]])
    std = np.array([[0.0, 0.0], [0.0, 0.3], [0.0, 0.0]])
    chosen = select_by_ehvi(validated, mean, std, 3, np.random.default_rng(0))
    assert sorted(chosen) == [0, 1, 2] and chosen[0] == 1  # the uncertain one first


def test_more_than_two_objectives_are_refused():
    with pytest.raises(ValueError, match="need 2 objectives.*population"):
        select_by_ehvi(np.zeros((3, 3)), np.zeros((4, 3)), np.zeros((4, 3)), 2, np.random.default_rng(0))
    space = SearchSpace({f"k_{i}": [3, 5, 7] for i in range(4)})
    with pytest.raises(ValueError, match="acquisition='ehvi' needs two objectives, got 3"):
        ConcurrentNAS(space, {"a": "max", "b": "min", "c": "min"}, 20, acquisition="ehvi")
    assert not ConcurrentNAS(space, {"a": "max", "b": "min", "c": "min"}, 20).uses_ehvi


SPACE = SearchSpace({f"x_{i}": list(range(5)) for i in range(8)})


def _linear(archs):
    return np.array([sum((i + 1) * a[f"x_{i}"] for i in range(8)) for a in archs], dtype=float)


def _interaction(archs):
    """Zero unless the first two choices are both high: a linear model cannot rank it."""
    return np.array([float(a["x_0"] >= 3 and a["x_1"] >= 3) * (a["x_2"] + 1) for a in archs])


@pytest.mark.parametrize(("target", "winner"), [(_linear, "gp"), (_interaction, "gbm")])
def test_the_model_that_ranks_the_new_batches_best_is_chosen(target, winner):
    model = ObjectiveModel(SPACE, "auto", seed=0)
    archs = SPACE.sample(60, rng=0)
    for batch in range(4):
        model.fit(archs, target(archs))
        new = SPACE.sample(40, rng=batch + 1)
        model.observe(new, target(new))
        archs = archs + new
    assert model.chosen == winner and model.scores[winner] == max(model.scores.values())
    mean, std = model.predict(SPACE.encode(archs[:5]))
    assert mean.shape == std.shape == (5,) and np.all(std > 0)


def test_a_candidate_not_chosen_is_refitted_only_every_few_iterations(monkeypatch):
    """And the Gaussian process re-optimises its kernel only then: in between it keeps the last one."""
    fitted = []
    real = models_module.make_predictor

    def counting(space, kind, **options):
        fitted.append(kind)
        return real(space, kind, **options)

    monkeypatch.setattr(models_module, "make_predictor", counting)
    model = ObjectiveModel(SPACE, "auto", seed=0)
    archs = SPACE.sample(40, rng=0)
    for _ in range(6):
        model.fit(archs, _linear(archs))
    assert model.chosen == "gp" and "bayes" not in fitted  # the process gives the uncertainty too
    assert fitted.count("gp") == 6
    assert fitted.count("gbm") == 2  # iterations 0 and 4 of six (_REFIT_EVERY == 4)
    gp = model._fitted["gp"][-1]
    assert gp.optimizer is None and gp.kernel == gp.kernel_  # iteration 5 kept iteration 4's kernel


def _toy(archs):
    x = SPACE.encode(archs).astype(float)
    cost = x @ np.arange(1.0, 9.0)
    acc = 1.0 - np.exp(-(x @ np.linspace(1.5, 0.5, 8)) / 6.0)
    return {"acc": acc, "cost": cost}


def test_expected_improvement_batches_take_unvalidated_archs_until_the_space_is_spent(monkeypatch):
    monkeypatch.setattr(_tactic, "_MAX_IDLE_PROPOSALS", 3)
    small = SearchSpace({f"x_{i}": [0, 4] for i in range(6)})  # 64 archs
    tactic = ConcurrentNAS(small, {"acc": "max", "cost": "min"}, 64, pop_size=8, n_gen=3, seed=0)
    assert tactic.uses_ehvi
    seen = set()
    while archs := tactic.ask():
        keys = [small.key(a) for a in archs]
        assert not seen & set(keys)  # every batch is new archs only
        seen |= set(keys)
        tactic.tell(archs, _toy_small(archs))
    assert tactic.n_validated == 64


def _toy_small(archs):
    x = np.array([[a[f"x_{i}"] for i in range(6)] for a in archs], dtype=float)
    return {"acc": 1.0 - np.exp(-(x @ np.linspace(1.5, 0.5, 6)) / 6.0), "cost": x @ np.arange(1.0, 7.0)}
