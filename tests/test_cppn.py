import numpy as np
import pytest

from ganclip.generators import available_models, load_generator, resolve_model
from ganclip.generators.cppn import CPPN
from ganclip.errors import BadInputError
from ganclip.imagetypes import BUILTIN_TYPES

SIZE = 48


@pytest.fixture(scope="module")
def gen():
    return CPPN(size=SIZE, seed=0)


def inputs(n, *, type_index=0, seed=0, truncation=0.6):
    z = np.random.default_rng(seed).uniform(-1, 1, (n, 128)).astype(np.float32)
    y = np.repeat(BUILTIN_TYPES[type_index].class_vector()[None], n, 0)
    return z, y, np.full(n, truncation, np.float32)


def diff(a, b):
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_frames_have_the_protocol_shape(gen):
    frames = gen(*inputs(3))
    assert frames.shape == (3, SIZE, SIZE, 3) and frames.dtype == np.uint8
    assert gen.dim_z == 128 and gen.n_classes == 1000 and gen.size == (SIZE, SIZE)


@pytest.mark.parametrize("size", [16, 33, 100])
def test_it_draws_natively_at_any_size(size):
    assert CPPN(size=size)(*inputs(1)).shape == (1, size, size, 3)


def test_same_seed_same_pictures_other_seed_other_pictures(gen):
    args = inputs(2)
    assert np.array_equal(gen(*args), CPPN(size=SIZE, seed=0)(*args))
    assert diff(gen(*args), CPPN(size=SIZE, seed=1)(*args)) > 10


def test_a_frame_does_not_depend_on_its_batch(gen):
    z, y, t = inputs(4)
    batch = gen(z, y, t)
    alone = gen(z[2:3], y[2:3], t[2:3])
    assert diff(batch[2:3], alone) < 0.01


def test_image_types_look_different_and_z_steps_are_small(gen):
    z, _, t = inputs(1)
    looks = [gen(z, inputs(1, type_index=i)[1], t)[0] for i in range(6)]
    between_types = min(diff(a, b) for i, a in enumerate(looks) for b in looks[i + 1:])
    # palettes differ too, not only structure
    colours = np.array([im.reshape(-1, 3).mean(0) for im in looks])
    spread = np.linalg.norm(colours[:, None] - colours[None], axis=-1)
    assert between_types > 20
    assert np.sort(spread, axis=1)[:, 1].min() > 8

    # a small step in z, as one frame of smoothed music moves it, is a small change
    step = np.random.default_rng(5).uniform(-0.02, 0.02, z.shape).astype(np.float32)
    y0 = inputs(1)[1]
    assert diff(gen(z, y0, t)[0], gen(z + step, y0, t)[0]) < between_types / 5


def test_interpolated_class_vectors_morph_step_by_step(gen):
    z, ya, t = inputs(1, type_index=0)
    yb = inputs(1, type_index=1)[1]
    a = np.linspace(0, 1, 21, dtype=np.float32)[:, None]
    frames = gen(np.repeat(z, 21, 0), (1 - a) * ya + a * yb, np.repeat(t, 21))
    assert diff(frames[0], gen(z, ya, t)[0]) < 0.05  # batch maths may round one level off
    assert diff(frames[-1], gen(z, yb, t)[0]) < 0.05
    steps = [diff(frames[i], frames[i + 1]) for i in range(20)]
    assert max(steps) < diff(frames[0], frames[-1]) / 2


def test_truncation_changes_the_picture(gen):
    z, y, _ = inputs(1)
    assert diff(gen(z, y, np.array([0.3], np.float32)), gen(z, y, np.array([1.0], np.float32))) > 3


def test_registry_and_auto(caplog):
    assert available_models()[:2] == ["auto", "cppn"]
    assert resolve_model("auto")[0] == "cppn" and "cppn" in resolve_model("auto")[1]
    with pytest.raises(BadInputError, match="unknown model 'bigan-256'.*cppn"):
        load_generator("bigan-256")
    assert load_generator("cppn", size=20).size == (20, 20)
