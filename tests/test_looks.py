"""Looks for W-space models: seeds, w files, seeds picked far apart, --looks."""

import numpy as np
import pytest

from ganclip import looks
from ganclip.errors import BadInputError, ImageTypeError
from ganclip.imagetypes import BUILTIN_TYPES, load_types_file


class Mapper:
    """A stand-in mapping network: z → tanh(z M + y C), the same w at every layer."""

    def __init__(self, *, dim_z=8, n_classes=0, num_ws=4, w_dim=6):
        self.dim_z, self.n_classes, self.num_ws, self.w_dim = dim_z, n_classes, num_ws, w_dim
        rng = np.random.default_rng(1)
        self.m = rng.standard_normal((dim_z, w_dim))
        self.c = rng.standard_normal((n_classes, w_dim)) * 3
        self.calls = []

    def map(self, z, y):
        self.calls.append((np.array(z), np.array(y)))
        w = np.tanh(np.asarray(z) @ self.m + np.asarray(y) @ self.c)
        return np.repeat(w[:, None], self.num_ws, axis=1).astype(np.float32)


@pytest.mark.parametrize("text, expected", [
    ("auto", ("auto", None)), ("auto:8", ("auto", 8)), ("AUTO : 3", ("auto", 3)),
    ("seeds:3,17,42", ("seeds", (3, 17, 42))), ("seeds: 5", ("seeds", (5,)))])
def test_parse_looks(text, expected):
    assert looks.parse_looks(text) == expected


@pytest.mark.parametrize("text, says", [
    ("seeds:", "needs seed numbers"), ("seeds", "needs seed numbers"),
    ("seeds:a,b", "whole numbers"), ("seeds:1,1", "twice"), ("seeds:-3", "whole numbers"),
    ("auto:0", "1..1000"), ("auto:x", "1..1000"), ("pretty", "give auto")])
def test_bad_looks_are_one_line(text, says):
    with pytest.raises(BadInputError) as info:
        looks.parse_looks(text)
    assert says in str(info.value) and "\n" not in str(info.value) and "--looks" in str(info.value)


def test_seed_latents_are_gen_images_z():
    z = looks.seed_latents([42, 7], 512)
    assert z.shape == (2, 512) and z.dtype == np.float32
    np.testing.assert_array_equal(z[0], np.random.RandomState(42).randn(512).astype(np.float32))


def test_seeds_give_the_mapped_z():
    mapper = Mapper()
    types, anchors = looks.resolve(list(BUILTIN_TYPES), mapper, looks="seeds:3,17")
    assert [t.name for t in types] == ["seed 3", "seed 17"] and [t.seed for t in types] == [3, 17]
    expected = mapper.map(looks.seed_latents([3, 17], 8), np.zeros((2, 0)))
    np.testing.assert_allclose(anchors, expected, rtol=1e-6)
    assert anchors.shape == (2, 4, 6)


def test_auto_picks_seeds_far_apart():
    mapper = Mapper()
    types, anchors = looks.resolve([], mapper, looks="auto:4", seed=0)
    seeds = [t.seed for t in types]
    assert len(set(seeds)) == 4 and all(0 <= s < 4 * looks.AUTO_CANDIDATES for s in seeds)
    assert [t.name for t in types] == [f"seed {s}" for s in seeds]

    def spread(ws):
        d = ((ws[:, None] - ws[None]) ** 2).sum(-1)
        return d[np.triu_indices(len(ws), 1)].min()

    candidates = mapper.map(looks.seed_latents(range(4 * looks.AUTO_CANDIDATES), 8),
                            np.zeros((64, 0)))[:, 0]
    rng = np.random.default_rng(0)
    chance = [spread(candidates[rng.choice(64, 4, replace=False)]) for _ in range(200)]
    assert spread(anchors[:, 0]) > np.percentile(chance, 95)
    # another render seed starts from other candidates
    others, _ = looks.resolve([], mapper, looks="auto:4", seed=1)
    assert all(t.seed >= 64 for t in others)


def test_far_apart_keeps_away_from_given_points():
    points = np.array([[0.0], [1.0], [2.0], [10.0]])
    assert looks.far_apart(points, 1, given=np.array([[10.0]])) == [0]
    assert looks.far_apart(points, 2) == [3, 0]


def test_types_keep_their_seeds_and_the_others_become_automatic(tmp_path):
    np.save(tmp_path / "sunset.npy", np.full(6, 0.25, np.float32))
    (tmp_path / "looks.toml").write_text(
        '[[type]]\nname = "dawn"\nseed = 42\n\n'
        '[[type]]\nname = "sunset"\nw = "sunset.npy"\n\n'
        '[[type]]\nname = "jelly"\nclasses = [["jellyfish", 1]]\n')
    given = load_types_file(tmp_path / "looks.toml")
    assert given[0].seed == 42 and given[1].w == str(tmp_path / "sunset.npy")
    types, anchors = looks.resolve(given, Mapper())
    assert [t.name for t in types] == ["dawn", "sunset", "jelly"]
    assert types[0].seed == 42 and types[2].seed is not None and types[2].seed != 42
    np.testing.assert_array_equal(anchors[1], np.full((4, 6), 0.25, np.float32))


@pytest.mark.parametrize("entry, says", [
    ('seed = 42\nw = "a.npy"', "not both"), ("seed = -1", "seed must be"),
    ('seed = "x"', "seed must be"), ('w = "missing.npy"', "not there"),
    ('w = "a.txt"', "not there or not a .npy")])
def test_bad_look_entries(tmp_path, entry, says):
    np.save(tmp_path / "a.npy", np.zeros(6))
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "bad.toml").write_text(f'[[type]]\nname = "x"\n{entry}\n')
    with pytest.raises(ImageTypeError) as info:
        load_types_file(tmp_path / "bad.toml")
    assert says in str(info.value) and "bad.toml" in str(info.value)


@pytest.mark.parametrize("shape", [(6,), (1, 6), (4, 6), (1, 4, 6)])
def test_w_files_of_every_published_shape(tmp_path, shape):
    w = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    np.save(tmp_path / "w.npy", w)
    np.savez(tmp_path / "projected_w.npz", w=w)  # NVIDIA's projector writes this
    for path in (tmp_path / "w.npy", tmp_path / "projected_w.npz"):
        got = looks.load_w(path, num_ws=4, w_dim=6)
        assert got.shape == (4, 6)
        np.testing.assert_array_equal(got, np.broadcast_to(w.reshape(-1, 6), (4, 6)))


@pytest.mark.parametrize("array", [np.zeros(5), np.zeros((3, 6)), np.zeros((2, 4, 6)),
                                   np.full(6, np.nan), np.zeros(6, np.int64)])
def test_a_w_file_of_the_wrong_shape_is_one_line(tmp_path, array):
    np.save(tmp_path / "w.npy", array)
    with pytest.raises(BadInputError) as info:
        looks.load_w(tmp_path / "w.npy", num_ws=4, w_dim=6)
    message = str(info.value)
    assert "w.npy" in message and "[6] or [4, 6]" in message and "\n" not in message


def test_a_w_file_that_is_not_numpy(tmp_path):
    (tmp_path / "w.npy").write_bytes(b"not numpy")
    with pytest.raises(BadInputError, match="not a readable"):
        looks.load_w(tmp_path / "w.npy", num_ws=4, w_dim=6)


def test_conditional_models_take_classes_by_index(tmp_path):
    mapper = Mapper(n_classes=10)
    (tmp_path / "c.toml").write_text('[[type]]\nname = "three"\nseed = 1\nclasses = [[3, 1]]\n')
    given = load_types_file(tmp_path / "c.toml")
    _, anchors = looks.resolve(given, mapper)
    z, y = mapper.calls[-1]
    np.testing.assert_array_equal(y, np.eye(10, dtype=np.float32)[[3]])
    # looks without classes that fit get one each, in turn
    looks.resolve([], mapper, looks="seeds:1,2")
    np.testing.assert_array_equal(mapper.calls[-1][1].argmax(1), [0, 1])
