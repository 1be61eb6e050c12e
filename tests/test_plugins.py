"""Generator plug-ins: a distribution written into tmp_path declares factories in the
``ganclip.generators`` entry point group; they add --model NAME and render end to end,
and broken ones are one line naming them, never a stop."""

import sys
import textwrap

import numpy as np
import pytest

import ganclip
from conftest import probe_video
from ganclip import generators
from ganclip.camera import warp
from ganclip.cli import main
from ganclip.errors import BadInputError
from ganclip.generators import plugins
from media import decode_frames

PLUGIN = '''
import numpy as np

BUILT = []  # (factory, keywords) of every generator a factory built


class Solid:
    """Draws each frame in one colour: z's first three dimensions, (z + 2) / 4 of 255."""

    name = "solid"

    def __init__(self, size, dim_z=16):
        self.size, self.dim_z, self.n_classes = size, dim_z, 0

    def __call__(self, z, y, truncation):
        assert z.shape == (len(z), self.dim_z) and y.shape == (len(z), 0)
        rgb = np.clip((z[:, :3] + 2) / 4 * 255, 0, 255).round().astype(np.uint8)
        w, h = self.size
        return np.ascontiguousarray(np.broadcast_to(rgb[:, None, None], (len(z), h, w, 3)))


def solid(*, size=(256, 256), seed=0, device="cpu", precision="auto"):
    """one colour a frame, from z"""
    BUILT.append(("solid", dict(size=size, seed=seed, device=device, precision=precision)))
    return Solid((size[0] // 2, size[1] // 2))  # smaller than asked: the render scales it


solid.dim_z, solid.n_classes = 16, 0


def lazy(seed=0):  # takes one keyword of the contract and declares no widths
    BUILT.append(("lazy", dict(seed=seed)))
    return Solid((24, 20), dim_z=10)


def bare():  # no keyword at all: built when ganclip starts, kept for the first load
    BUILT.append(("bare", {}))
    return Solid((8, 8))


def weighted(*, size, weights=None):
    BUILT.append(("weighted", dict(weights=weights)))
    return Solid(size)


weighted.dim_z, weighted.n_classes = 16, 0


def raises(**keywords):
    raise RuntimeError("no GPU here")


def nothing(*, size):
    return object()
'''

ENTRY_POINTS = """\
[ganclip.generators]
solid = solid_plugin:solid
solid-lazy = solid_plugin:lazy
raises = solid_plugin:raises
nothing = solid_plugin:nothing
bare = solid_plugin:bare
weighted = solid_plugin:weighted
missing = no_such_module:factory
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The plug-in distribution installed on sys.path and loaded into a copy of the
    registry; its module (for BUILT) and the warnings the loading said."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "solid_plugin.py").write_text(textwrap.dedent(PLUGIN))
    info = folder / "solid_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: solid-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(generators, "REGISTRY", dict(generators.REGISTRY))
    warned = []
    monkeypatch.setattr(plugins.log, "warning", warned.append)
    names = generators.load_plugins()
    import solid_plugin

    yield names, solid_plugin, warned
    sys.modules.pop("solid_plugin", None)  # the next test's tmp_path has its own


def built(module, factory: str) -> list[dict]:
    """The keywords each generator ``factory`` built was built with."""
    return [keywords for name, keywords in module.BUILT if name == factory]


def render(argv, capsys, song, tmp_path, *more):
    code = main(["render", str(song), "-o", str(tmp_path / "o.mp4"), "--size", "32",
                 "--fps", "10", "-q", *argv, *more])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(code, err) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_a_factory_plug_in_adds_a_model_that_renders_its_frames(plugin, song, tmp_path,
                                                                 capsys):
    names, module, _ = plugin
    assert {"solid", "solid-lazy", "raises", "nothing", "bare", "weighted"} <= set(names)
    assert "solid" in generators.available_models()
    spec = generators.spec("solid")
    assert (spec.dim_z, spec.n_classes, spec.description) == (16, 0, "one colour a frame, from z")
    assert built(module, "solid") == []  # declared widths: nothing is built until the render
    code, out, err = render(["--model", "solid", "--plan-out", str(tmp_path / "p.npz")],
                            capsys, song, tmp_path)
    assert code == 0 and "with solid" in out, err
    assert built(module, "solid") == [dict(size=(32, 32), seed=0, device="cpu",
                                           precision="auto")]
    assert probe_video(tmp_path / "o.mp4")[0] == 30
    plan = ganclip.Plan.load(tmp_path / "p.npz")
    z = plan.batch(0, len(plan))[0]
    assert z.shape == (30, 16)
    rgb = np.clip((z[:, :3] + 2) / 4 * 255, 0, 255).round().astype(np.uint8)
    drawn = np.ascontiguousarray(np.broadcast_to(rgb[:, None, None], (30, 16, 16, 3)))
    expected = warp(drawn, plan.camera(0, len(plan)), (32, 32)).astype(float)
    decoded = np.stack([f.to_ndarray(format="rgb24") for f in decode_frames(tmp_path / "o.mp4")])
    assert np.abs(decoded - expected).mean() < 3  # the plug-in's colours, moved by the camera
    assert np.ptp(decoded.mean(axis=(1, 2)), axis=0).max() > 20  # and they change


def test_a_factory_without_widths_is_built_once_and_kept_for_the_first_load(plugin, song,
                                                                            tmp_path):
    _, module, _ = plugin
    spec = generators.spec("solid-lazy")
    assert built(module, "lazy") == []  # registering builds nothing
    assert (spec.dim_z, spec.n_classes) == (10, 0) and built(module, "lazy") == [dict(seed=0)]
    assert spec.precisions == ("fp32",)  # it takes no precision
    result = ganclip.render(song, output=tmp_path / "o.mp4", model="solid-lazy", fps=10,
                            size=32, quiet=True)
    assert result.frames == 30 and built(module, "lazy") == [dict(seed=0)]  # the one it built
    generators.load_generator("solid-lazy", seed=3)
    assert built(module, "lazy") == [dict(seed=0), dict(seed=3)]


def test_a_factory_without_keywords_is_built_at_start_and_that_one_loads_first(plugin):
    _, module, _ = plugin
    assert built(module, "bare") == [{}] and generators.spec("bare").dim_z == 16
    first = generators.load_generator("bare", size=64)
    assert first.size == (8, 8) and built(module, "bare") == [{}]
    assert generators.load_generator("bare") is not first and len(built(module, "bare")) == 2


def test_weights_go_to_a_factory_that_takes_them_and_are_refused_by_one_that_does_not(
        plugin, tmp_path):
    _, module, _ = plugin
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"0")
    generators.load_generator("weighted", weights=str(weights))
    assert built(module, "weighted") == [dict(weights=weights)]
    with pytest.raises(BadInputError, match=r"--weights .*w.bin: generator plug-in 'solid' "
                                            r"\(solid_plugin:solid\) takes no weights file"):
        generators.load_generator("solid", weights=str(weights))


@pytest.mark.parametrize("name, says", [
    ("raises", "generator plug-in 'raises' (solid_plugin:raises) failed: RuntimeError: no GPU "
               "here"),
    ("nothing", "generator plug-in 'nothing' (solid_plugin:nothing) failed: it returned a "
                "value of type object with dim_z None, n_classes None, size None, no __call__; a factory "
                "returns a generator"),
    ("missing", "generator plug-in 'missing' (no_such_module:factory) failed: "
                "ModuleNotFoundError: No module named 'no_such_module'"),
])
def test_a_broken_plug_in_is_one_line_naming_it(plugin, song, tmp_path, capsys, name, says):
    code, out, err = render(["--model", name], capsys, song, tmp_path)
    assert one_error(code, err).startswith(f"error: {says}")
    assert not out and not (tmp_path / "o.mp4").exists()


def test_a_plug_in_that_does_not_import_stops_nothing(plugin, capsys):
    names, _, warned = plugin
    assert "missing" not in names
    assert warned == ["generator plug-in 'missing' (no_such_module:factory) was not loaded: "
                      "ModuleNotFoundError: No module named 'no_such_module'"]
    assert main(["models"]) == 0
    listing = capsys.readouterr().out.splitlines()
    shown = {line.split()[0]: line for line in listing if line.strip()}
    assert {"cppn", "solid", "solid-lazy"} <= set(shown) and "broken" in shown["missing"]
    with pytest.raises(BadInputError, match="plug-in 'missing'"):
        ganclip.load_generator("missing")


def test_a_plug_in_may_not_take_the_name_of_a_model_when_broken(tmp_path, monkeypatch):
    from importlib.metadata import EntryPoint

    monkeypatch.setattr(generators, "REGISTRY", dict(generators.REGISTRY))
    monkeypatch.setattr(plugins.log, "warning", lambda message: None)
    broken = EntryPoint("cppn", "no_such_module:factory", "ganclip.generators")
    assert generators.load_plugins([broken]) == []
    assert generators.spec("cppn").description.startswith("built-in")  # still the built-in
