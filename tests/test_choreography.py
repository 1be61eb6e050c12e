import numpy as np
import pytest

from ganclip.choreography import (Plan, classic_plan, cluster_frames, ema, normalise_bands,
                                  transition_mix)
from ganclip.errors import BadInputError
from ganclip.imagetypes import BUILTIN_TYPES


def test_ema_matches_the_recurrence():
    x = np.random.default_rng(0).standard_normal((50, 3))
    span = 15
    alpha = 2 / (span + 1)
    expected = np.empty_like(x)
    expected[0] = x[0]
    for t in range(1, len(x)):
        expected[t] = alpha * x[t] + (1 - alpha) * expected[t - 1]
    assert np.allclose(ema(x, span=span), expected, atol=1e-5)
    assert np.allclose(ema(x, span=1), x)


def test_bands_normalise_to_minus_one_one_and_silence_to_zero():
    x = np.stack([np.linspace(-40, -10, 20), np.full(20, -100.0)], 1)
    out = normalise_bands(x)
    assert out[:, 0].min() == -1 and out[:, 0].max() == 1
    assert np.all(out[:, 1] == 0)


def test_kmeans_separates_two_sections_quiet_first():
    rng = np.random.default_rng(0)
    quiet = rng.normal(-0.5, 0.05, (40, 8))
    loud = rng.normal(0.5, 0.05, (40, 8))
    labels = cluster_frames(np.concatenate([loud, quiet]), n_types=2, seed=0)
    assert np.all(labels[:40] == 1) and np.all(labels[40:] == 0)


def test_kmeans_on_identical_frames_gives_one_type():
    assert np.all(cluster_frames(np.zeros((30, 8)), n_types=6, seed=0) == 0)


def test_transition_ramps_over_k_frames():
    labels = np.array([0] * 5 + [1] * 10)
    mix = transition_mix(labels, n_types=2, frames=4)
    assert np.allclose(mix.sum(axis=1), 1)
    assert np.allclose(mix[:5, 0], 1)
    assert np.allclose(mix[5:9, 1], [0.25, 0.5, 0.75, 1.0])
    assert np.allclose(mix[9:, 1], 1)


def test_zero_transitions_are_hard_cuts():
    labels = np.array([0, 0, 2, 2, 1])
    assert np.array_equal(transition_mix(labels, n_types=3, frames=0), np.eye(3)[labels])


def classic(n_frames=120, fps=30, transitions=10, seed=0, types=BUILTIN_TYPES[:3]):
    rng = np.random.default_rng(1)
    db = np.concatenate([rng.normal(-60, 1, (n_frames // 2, 128)),
                         rng.normal(-20, 1, (n_frames - n_frames // 2, 128))])
    return classic_plan(db.astype(np.float32), fps=fps, image_types=list(types),
                        transitions=transitions, seed=seed)


def test_classic_plan_has_the_contract_shapes():
    plan = classic()
    T = 120
    assert plan.times.shape == (T,) and np.allclose(plan.times, np.arange(T) / 30)
    assert plan.z.shape == (T, 128) and plan.z.dtype == np.float32
    assert plan.y.shape == (T, 1000)
    assert plan.truncation.shape == (T,) and np.all((plan.truncation > 0) & (plan.truncation <= 1))
    assert plan.look.shape == (T,)
    assert np.abs(plan.z).max() <= 1.0 + 1e-6  # built-ins have no base latent: z is the spectrum
    assert plan.type_names == tuple(t.name for t in BUILTIN_TYPES[:3])


def test_classic_plan_changes_type_between_the_sections():
    plan = classic(types=BUILTIN_TYPES[:2])
    assert len(set(plan.look[:50])) == 1 and len(set(plan.look[70:])) == 1
    assert plan.look[0] != plan.look[-1]
    # the class vector morphs over the transition frames, it does not jump
    steps = np.abs(np.diff(plan.y, axis=0)).sum(axis=1)
    assert steps.max() <= 2.0 / 10 + 1e-5


def test_plan_seed_fixes_the_band_permutation():
    a, b, c = classic(seed=0), classic(seed=0), classic(seed=1)
    assert np.array_equal(a.z, b.z)
    assert not np.array_equal(a.z, c.z)


def test_plan_round_trips_through_npz(tmp_path):
    plan = classic()
    plan.settings["song"] = "x.wav"
    loaded = Plan.load(plan.save(tmp_path / "plan.npz"))
    for name in ("times", "z", "mix", "classes", "truncation", "look"):
        assert np.array_equal(getattr(loaded, name), getattr(plan, name)), name
    assert loaded.type_names == plan.type_names and loaded.fps == plan.fps
    assert loaded.settings == plan.settings
    assert [p.name for p in tmp_path.iterdir()] == ["plan.npz"]


def test_a_file_that_is_not_a_plan_is_refused(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("nope")
    with pytest.raises(BadInputError, match="bad.npz"):
        Plan.load(bad)
