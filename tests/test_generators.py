"""The generator registry: specs, the auto rule, plug-ins, and plans made for a model's shape."""

import textwrap

import numpy as np
import pytest

import ganclip
from ganclip import generators
from ganclip.errors import BadInputError
from ganclip.generators import GeneratorSpec


class StandIn:
    """A 512-d, unconditional generator that draws z's first three dimensions as colour."""

    name, dim_z, n_classes = "stand-in", 512, 0

    def __init__(self, size):
        self.size, self.seen = size, []

    def __call__(self, z, y, truncation):
        assert z.shape[1] == 512 and y.shape == (len(z), 0) and truncation.shape == (len(z),)
        self.seen.append(z.copy())
        rgb = np.clip((z[:, :3] + 2) / 4 * 255, 0, 255).astype(np.uint8)
        return np.broadcast_to(rgb[:, None, None, :], (len(z), self.size[1], self.size[0], 3)).copy()


@pytest.fixture
def stand_in(monkeypatch):
    drawn = []

    def load(weights, *, size, seed, device, precision, quiet):
        drawn.append(StandIn(size))
        return drawn[-1]

    spec = GeneratorSpec(name="stand-in", description="a test's 512-d unconditional model",
                         dim_z=512, n_classes=0, native_size=None, precisions=("fp32",),
                         load=load)
    monkeypatch.setitem(generators.REGISTRY, "stand-in", spec)
    return drawn


@pytest.mark.parametrize("mode", ["reactive", "classic"])
def test_a_512_d_unconditional_model_draws_a_plan_made_for_it(song, tmp_path, stand_in, mode):
    result = ganclip.render(song, output=tmp_path / "o.mp4", model="stand-in", mode=mode,
                            fps=10, size=16, plan_out=tmp_path / "p.npz", quiet=True)
    assert result.frames == 30 and result.model == "stand-in"
    plan = ganclip.Plan.load(tmp_path / "p.npz")
    assert plan.z.shape == (30, 512) and plan.classes.shape[1] == 0
    assert plan.model == "stand-in" and plan.size == (16, 16)
    z = np.concatenate(stand_in[0].seen)
    assert np.array_equal(z, plan.z) and np.ptp(z, axis=0).min() > 0  # every dimension moves


def test_a_plan_for_another_shape_is_refused_in_one_line(song, tmp_path, stand_in):
    ganclip.render(song, output=tmp_path / "o.mp4", fps=10, size=16,
                   plan_out=tmp_path / "p.npz", quiet=True)  # a 128-d, 1000-class plan
    with pytest.raises(BadInputError, match="z is 128-d but the generator takes 512.*"
                                            "1000 classes but the generator takes 0"):
        ganclip.render(song, output=tmp_path / "s.mp4", model="stand-in", fps=10, size=16,
                       plan_in=tmp_path / "p.npz", quiet=True)
    assert not (tmp_path / "s.mp4.parts").exists() and not (tmp_path / "s.mp4").exists()


def test_classic_mode_at_128_dimensions_is_the_band_permutation(song):
    from ganclip.choreography import bands_to_latent

    plan = ganclip.analyze(song, mode="classic", fps=10, seed=3)
    perm = np.random.default_rng(3).permutation(128)
    assert np.array_equal(bands_to_latent(128, 128, seed=3), np.eye(128)[:, perm])
    wide = ganclip.analyze(song, mode="classic", fps=10, seed=3, dim_z=512, n_classes=0)
    assert wide.z.shape == (len(plan), 512) and np.array_equal(wide.look, plan.look)


def test_auto_is_one_rule_and_specs_say_what_they_take():
    assert generators.resolve_model("auto")[0] == "cppn"
    for name in ("cppn", "biggan-deep-128", "biggan-deep-256", "biggan-deep-512"):
        spec = generators.spec(name)
        assert spec.dim_z == 128 and spec.n_classes == 1000 and spec.description
    assert generators.spec("cppn").native_size is None
    assert generators.spec("biggan-deep-512").native_size == 512
    with pytest.raises(BadInputError, match="--precision bf16: cppn draws in auto, fp32"):
        ganclip.load_generator("cppn", precision="bf16")


def test_a_plug_in_registers_through_its_entry_point(tmp_path, monkeypatch):
    (tmp_path / "fake_plugin.py").write_text(textwrap.dedent("""
        from ganclip.generators import GeneratorSpec

        def spec():
            return GeneratorSpec(name="fake-gan", description="from a plug-in", dim_z=64,
                                 n_classes=0, native_size=64, precisions=("fp32",),
                                 load=lambda weights, **kw: None)
    """))
    info = tmp_path / "fake_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[ganclip.generators]\nfake-gan = fake_plugin:spec\n"
                                           "broken = fake_plugin:missing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(generators, "REGISTRY", dict(generators.REGISTRY))
    assert generators.load_plugins() == ["fake-gan"]  # the broken one is skipped, said
    assert generators.spec("fake-gan").dim_z == 64 and "fake-gan" in generators.available_models()
