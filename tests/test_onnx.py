"""ONNX generators (--model FILE.onnx): tiny torch generators exported with the contract's
names, read, drawn and rendered; files that break the contract refused in one line."""

import sys
import warnings

import numpy as np
import pytest
import torch

import ganclip
from conftest import probe_video, video_shape
from ganclip import generators
from ganclip.camera import warp
from ganclip.cli import main
from ganclip.errors import BadInputError
from ganclip.generators.common import to_uint8
from media import decode_frames

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")  # torch.onnx.export writes through it

BATCH = {0: "batch"}


def stretch(n: int, to: int) -> torch.Tensor:
    """[to, n]: linear interpolation of ``n`` values to ``to`` (half-pixel centres)."""
    eye = torch.eye(n)[None]  # each source value alone, as a channel
    return torch.nn.functional.interpolate(eye, size=to, mode="linear")[0].T


class Tiny(torch.nn.Module):
    """z (and y) → a smooth picture in [-1, 1]: a 4 × 4 field scaled up to ``height`` ×
    ``width`` by fixed matrices (a graph with static H, W), so a video of it survives
    H.264 close to what was drawn."""

    def __init__(self, dim_z: int, n_classes: int, *, height: int = 12, width: int = 16):
        super().__init__()
        torch.manual_seed(dim_z + n_classes)
        self.linear = torch.nn.Linear(dim_z + n_classes, 3 * 4 * 4)
        self.register_buffer("rows", stretch(4, height))
        self.register_buffer("cols", stretch(4, width).T.contiguous())

    def forward(self, z, *rest):  # (z, y, truncation) or (z, truncation)
        *y, truncation = rest
        x = torch.cat([z * truncation[:, None], *y], 1)
        field = torch.tanh(self.linear(x) * 2).view(-1, 3, 4, 4)
        return self.rows @ field @ self.cols


class Resized(Tiny):
    """:class:`Tiny` scaled up by a Resize node: the graph leaves H and W open."""

    def forward(self, z, *rest):
        *y, truncation = rest
        x = torch.cat([z * truncation[:, None], *y], 1)
        field = torch.tanh(self.linear(x) * 2).view(-1, 3, 4, 4)
        return torch.nn.functional.interpolate(field, size=(len(self.rows), self.cols.shape[1]),
                                               mode="bilinear")


def export(module, path, inputs: dict, *, axes: dict | None = None, batch: bool = True):
    """``module`` written to ``path`` with ``inputs`` (name → example) and a dynamic batch
    on every input and on ``images`` (unless not ``batch``: the examples' then), plus
    ``axes``."""
    dynamic = {name: dict(BATCH) if batch else {} for name in [*inputs, "images"]}
    for name, more in (axes or {}).items():
        dynamic[name] = {**dynamic[name], **more}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter says it is the old one
        torch.onnx.export(module, tuple(inputs.values()), str(path), input_names=list(inputs),
                          output_names=["images"], dynamic_axes=dynamic, dynamo=False)
    return path


def example(dim_z: int, n_classes: int, n: int = 2) -> dict:
    z = {"z": torch.randn(n, dim_z)}
    return {**z, **({"y": torch.rand(n, n_classes)} if n_classes else {}),
            "truncation": torch.full((n,), 0.7)}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A conditional 8-d, 5-class model of 16x12 frames, and an unconditional 6-d one whose
    frames' height and width are dynamic in the graph (8x8 when drawn)."""
    folder = tmp_path_factory.mktemp("onnx")
    conditional = Tiny(8, 5)
    unconditional = Resized(6, 0, height=8, width=8)
    return {
        "conditional": (conditional, export(conditional, folder / "conditional.onnx",
                                            example(8, 5))),
        "unconditional": (unconditional, export(unconditional, folder / "unconditional.onnx",
                                                example(6, 0))),
    }


def inputs_for(dim_z: int, n_classes: int, n: int = 5):
    rng = np.random.default_rng(1)
    z = rng.standard_normal((n, dim_z)).astype(np.float32)
    y = rng.dirichlet(np.ones(n_classes), n).astype(np.float32) if n_classes \
        else np.zeros((n, 0), np.float32)
    return z, y, rng.uniform(0.3, 1.0, n).astype(np.float32)


@pytest.mark.parametrize("kind, dim_z, n_classes, size", [
    ("conditional", 8, 5, (16, 12)), ("unconditional", 6, 0, (8, 8))])
def test_an_onnx_file_is_read_and_draws_as_the_torch_model(models, kind, dim_z, n_classes,
                                                           size):
    module, path = models[kind]
    spec = generators.spec(str(path))
    assert (spec.dim_z, spec.n_classes) == (dim_z, n_classes) and spec.name == str(path.resolve())
    assert ("16x12" if n_classes else "its size found when it loads") in spec.description
    generator = ganclip.load_generator(str(path), size=64)
    assert (generator.dim_z, generator.n_classes, generator.size) == (dim_z, n_classes, size)
    z, y, t = inputs_for(dim_z, n_classes)
    frames = generator(z, y, t)
    with torch.no_grad():
        args = [torch.from_numpy(z), *([torch.from_numpy(y)] if n_classes else []),
                torch.from_numpy(t)]
        expected = to_uint8(module(*args))
    assert frames.dtype == np.uint8 and frames.shape == (5, size[1], size[0], 3)
    assert np.abs(frames.astype(int) - expected).max() <= 1  # float order may flip a round
    assert np.ptp(frames) > 100  # the pictures are not blank


def test_a_graph_with_a_fixed_batch_of_one_draws_any_batch(tmp_path):
    module = Tiny(8, 5)
    path = export(module, tmp_path / "one.onnx", example(8, 5, n=1), batch=False)
    generator = ganclip.load_generator(str(path))
    z, y, t = inputs_for(8, 5, n=3)
    with torch.no_grad():
        expected = to_uint8(module(*(torch.from_numpy(a) for a in (z, y, t))))
    assert np.abs(generator(z, y, t).astype(int) - expected).max() <= 1


def test_a_render_with_an_onnx_model_is_a_video_of_its_frames(models, song, tmp_path):
    module, path = models["conditional"]
    result = ganclip.render(song, output=tmp_path / "o.mp4", model=str(path), fps=10,
                            size=32, plan_out=tmp_path / "p.npz", quiet=True)
    frames, video_s, _, codecs = probe_video(result.path)
    assert (frames, codecs, video_shape(result.path)) == (30, ("h264", "aac"), (32, 32))
    plan = ganclip.Plan.load(tmp_path / "p.npz")
    assert plan.z.shape == (30, 8) and plan.classes.shape[1] == 5 and result.model == str(path.resolve())
    z, y, t = plan.batch(0, len(plan))
    with torch.no_grad():
        drawn = to_uint8(module(*(torch.from_numpy(a) for a in (z, y, t))))
    expected = warp(drawn, plan.camera(0, len(plan)), (32, 32)).astype(float)
    decoded = np.stack([f.to_ndarray(format="rgb24") for f in decode_frames(result.path)])
    assert np.abs(decoded - expected).mean() < 6  # H.264 of the same pictures


def refuse(capsys, song, tmp_path, model) -> str:
    """The one line ``ganclip render`` says for ``model``, having exited with 2."""
    code = main(["render", str(song), "-o", str(tmp_path / "o.mp4"), "--model", str(model),
                 "--size", "16", "--fps", "5", "-q"])
    out, err = capsys.readouterr()
    assert code == 2 and not out and not (tmp_path / "o.mp4").exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(model) in lines[0], err
    return lines[0]


class RankThree(torch.nn.Module):
    def forward(self, z, truncation):
        return torch.tanh(z[:, :3, :, None].expand(-1, 3, 4, 4) * truncation[:, None, None, None])


class IntClasses(Tiny):
    def forward(self, z, y, truncation):
        return super().forward(z, y.float(), truncation)


BAD = {  # name → (module, inputs, extra dynamic axes), and what the line must say
    "misnamed": (lambda: Tiny(8, 0), {"x": torch.randn(2, 8), "truncation": torch.ones(2)},
                 None, "input 'x' is not one of z, y, truncation; it has no input 'z'"),
    "rank-3": (RankThree, {"z": torch.randn(2, 8, 1), "truncation": torch.ones(2)}, None,
               "z is [batch, 8, 1], rank 3 not 2"),
    "int-classes": (lambda: IntClasses(8, 5), {"z": torch.randn(2, 8),
                    "y": torch.zeros(2, 5, dtype=torch.long), "truncation": torch.ones(2)},
                    None, "y is int64, not float32"),
    "dynamic-z": (lambda: Tiny(8, 0), {"z": torch.randn(2, 8), "truncation": torch.ones(2)},
                  {"z": {1: "dim_z"}}, "z's width is dynamic ([batch, dim_z])"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_file_that_breaks_the_contract_is_one_line_naming_it(name, song, tmp_path, capsys):
    make, inputs, axes, says = BAD[name]
    path = export(make(), tmp_path / f"{name}.onnx", inputs, axes=axes)
    line = refuse(capsys, song, tmp_path, path)
    assert says in line and "an ONNX generator takes inputs z [B, dim_z]" in line


def test_a_file_that_is_not_onnx_is_one_line(song, tmp_path, capsys):
    path = tmp_path / "notes.onnx"
    path.write_text("not a model\n" * 10)
    assert "not an ONNX model onnxruntime can run" in refuse(capsys, song, tmp_path, path)


def test_without_onnxruntime_the_line_says_how_to_install_it(models, song, tmp_path, capsys,
                                                              monkeypatch):
    path = tmp_path / "copy.onnx"  # another file: its spec is not read yet
    path.write_bytes(models["conditional"][1].read_bytes())
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime fails
    line = refuse(capsys, song, tmp_path, path)
    assert line == f"error: --model {path} needs onnxruntime: pip install 'ganclip[onnx]'"


def test_onnx_draws_in_fp32_only_and_holds_its_own_weights(models, tmp_path):
    path = str(models["conditional"][1])
    with pytest.raises(BadInputError, match="--precision bf16: .*draws in auto, fp32"):
        ganclip.load_generator(path, precision="bf16")
    with pytest.raises(BadInputError, match="holds its own weights"):
        ganclip.load_generator(path, weights=tmp_path)


def test_cuda_runs_on_the_cuda_provider_when_onnxruntime_has_it(models, monkeypatch):
    import onnxruntime

    from ganclip.generators.onnx import runtime

    asked = []

    def session(path, options, *, providers):
        asked.append(providers)

    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    path = models["conditional"][1]
    runtime.open_session(path, device="cpu")
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [runtime.CPU])
    runtime.open_session(path, device="cuda")
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: [runtime.CUDA, runtime.CPU])
    runtime.open_session(path, device="cuda:1")
    assert asked == [[runtime.CPU], [runtime.CPU],
                     [(runtime.CUDA, {"device_id": 1}), runtime.CPU]]
