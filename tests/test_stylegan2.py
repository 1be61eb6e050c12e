"""StyleGAN2 / StyleGAN2-ADA written in ganclip: NVIDIA's snapshots load as data and draw
what NVIDIA's code draws (reference outputs in ../shared/fixtures/stylegan), the
safetensors format round-trips, bad files are refused in one line, and the protocol pieces
(noise gain, per-sample truncation, precision, clamping) do what they say."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from ganclip.errors import BadInputError, WeightsError
from ganclip.generators.stylegan import formats, stylegan2
from ganclip.generators.stylegan.layers import MappingNetwork
from ganclip.generators.stylegan.ops import conv2d_resample, setup_filter, upfirdn2d
from ganclip.generators.stylegan.snapshot import SnapshotError, read_snapshot

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "stylegan"
MARKER = Path("/tmp/GANCLIP_PICKLE_CODE_RAN")  # what malicious.pkl's embedded source writes
# pickle -> the reference outputs it must reproduce (malicious.pkl holds sg2-32's tensors)
CASES = {"sg2-32": "sg2-32", "sg2ada-32": "sg2ada-32", "sg2-cond-32": "sg2-cond-32",
         "malicious": "sg2-32"}
REL_TOL = 1e-4  # of each array's max |value|, plus rtol; the fixtures differ by 2e-6 by threads

needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"{FIXTURES} absent")


def fixture(name: str) -> Path:
    return FIXTURES / f"{name}.pkl"


def assert_matches(actual: torch.Tensor, expected: np.ndarray, what: str) -> None:
    expected = np.asarray(expected)
    atol = REL_TOL * float(np.abs(expected).max())
    np.testing.assert_allclose(actual.detach().numpy(), expected, rtol=REL_TOL, atol=atol,
                               err_msg=what)


def assert_one_line_naming(exc: BaseException, path: Path) -> str:
    message = str(exc)
    assert "\n" not in message and str(path) in message, message
    return message


def tiny_config(resolution=32, *, c_dim=0, **synthesis) -> dict:
    """NVIDIA's published layout at a few channels, small enough to run in milliseconds."""
    config = formats.random_config("stylegan2", resolution, z_dim=32, w_dim=32, c_dim=c_dim)
    config["kwargs"]["synthesis_kwargs"].update(channel_base=256, channel_max=16, **synthesis)
    return config


def with_noise(generator, strength=0.5):
    """NVIDIA initialises noise strengths to 0; a trained net's are not."""
    for module in generator.modules():
        if isinstance(module, stylegan2.SynthesisLayer):
            module.noise_strength.fill_(strength)
    return generator


# --- NVIDIA's snapshots, numerically -------------------------------------------------------

@needs_fixtures
@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("fused", [True, False])
def test_snapshot_draws_what_nvidia_draws(name, fused):
    generator = formats.load(fixture(name))
    expected = np.load(FIXTURES / f"{CASES[name]}.expected.npz", allow_pickle=False)
    z, c = torch.from_numpy(expected["z"]), torch.from_numpy(expected["c"])
    assert (generator.z_dim, generator.c_dim, generator.num_ws) == \
        (expected["z_dim"], expected["c_dim"], expected["num_ws"])
    with torch.no_grad():
        assert_matches(generator.mapping(z, c, truncation_psi=1.0), expected["w"], "w")
        assert_matches(generator.mapping(z, c, truncation_psi=0.7), expected["w_psi07"], "w_psi07")
        for key, psi in (("img", 1.0), ("img_psi07", 0.7)):
            assert_matches(generator(z, c, psi, noise_mode="const", fused_modconv=fused),
                           expected[key], key)
        ws = torch.from_numpy(expected["w_psi07"])
        assert_matches(generator.synthesis(ws, noise_mode="const", fused_modconv=fused),
                       expected["img_from_w"], "img_from_w")


@needs_fixtures
def test_snapshot_names_and_config():
    node = read_snapshot(fixture("sg2-32"))
    generator = stylegan2.from_persistent(node)
    assert set(generator.state_dict()) == set(node.tensors())
    assert "synthesis.b8.conv0.affine.weight" in node.tensors()
    kwargs = generator.config()["kwargs"]
    # the stylegan3 repository's default clamp, read from the layers, written out
    assert kwargs["synthesis_kwargs"]["conv_clamp"] == 256
    assert "fused_modconv_default" not in kwargs["synthesis_kwargs"]
    assert formats.family_of(node) == "stylegan2"
    assert formats.describe(generator) == {"family": "stylegan2", "z_dim": 64, "w_dim": 64,
                                           "c_dim": 0, "img_resolution": 32, "img_channels": 3,
                                           "num_ws": 8}


@needs_fixtures
def test_malicious_snapshot_loads_without_running_its_code(tmp_path):
    MARKER.unlink(missing_ok=True)
    stylegan2.from_persistent(read_snapshot(fixture("malicious")))
    formats.load(fixture("malicious"))
    formats.convert(fixture("malicious"), tmp_path / "m.safetensors")
    assert not MARKER.exists()


# --- safetensors ---------------------------------------------------------------------------

@needs_fixtures
def test_safetensors_round_trip_is_exact(tmp_path):
    original = formats.load(fixture("sg2-cond-32"))
    path = formats.convert(fixture("sg2-cond-32"), tmp_path / "cond.safetensors")
    assert path == tmp_path / "cond.safetensors"
    assert [p.name for p in tmp_path.iterdir()] == ["cond.safetensors"]  # no temporary left
    assert formats.read_header(path) == original.config()
    loaded = formats.load(path)
    z = torch.randn(3, 64, generator=torch.Generator().manual_seed(1))
    c = torch.eye(10)[[2, 5, 9]]
    with torch.no_grad():
        assert torch.equal(loaded(z, c, 0.7), original(z, c, 0.7))


def test_safetensors_of_a_random_net(tmp_path):
    generator = stylegan2.Generator.from_config(tiny_config(16, architecture="resnet"), seed=3)
    path = formats.save_safetensors(generator, tmp_path / "r.safetensors")
    loaded = formats.load_safetensors(path)
    assert loaded.config() == generator.config()
    for name, tensor in generator.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_read_header_reads_only_the_header(tmp_path):
    generator = stylegan2.Generator.from_config(tiny_config(8))
    path = formats.save_safetensors(generator, tmp_path / "g.safetensors")
    data = path.read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    blank = tmp_path / "blank.safetensors"  # same header, every tensor byte zeroed
    blank.write_bytes(data[:header_end] + bytes(len(data) - header_end))
    assert formats.read_header(blank) == generator.config()


# --- files that are not what they claim ----------------------------------------------------

def write_pickle(path: Path, payload: bytes) -> Path:
    path.write_bytes(payload)
    return path


@needs_fixtures
def test_truncated_snapshot(tmp_path):
    data = fixture("sg2-32").read_bytes()
    path = write_pickle(tmp_path / "cut.pkl", data[:len(data) // 2])
    with pytest.raises(SnapshotError) as caught:
        formats.load(path)
    assert "truncated" in assert_one_line_naming(caught.value, path)


def test_pickle_of_a_plain_dict(tmp_path):
    path = write_pickle(tmp_path / "dict.pkl", pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(SnapshotError) as caught:
        formats.load(path)
    assert "not a StyleGAN snapshot" in assert_one_line_naming(caught.value, path)


class _RunsAShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_pickle_that_would_run_a_command(tmp_path):
    marker = tmp_path / "ran"
    path = write_pickle(tmp_path / "evil.pkl", pickle.dumps({"G_ema": _RunsAShell(marker)}))
    with pytest.raises(SnapshotError) as caught:
        formats.load(path)
    message = assert_one_line_naming(caught.value, path)
    assert "system" in message and ("posix" in message or "os." in message)
    assert not marker.exists()


def test_tensorflow_era_pickle(tmp_path):
    # GLOBAL dnnlib.tflib.network Network, EMPTY_TUPLE, REDUCE, STOP: what TF snapshots start with
    payload = b"\x80\x02cdnnlib.tflib.network\nNetwork\n)R."
    path = write_pickle(tmp_path / "tf.pkl", payload)
    with pytest.raises(SnapshotError) as caught:
        formats.load(path)
    message = assert_one_line_naming(caught.value, path)
    assert "TensorFlow-era" in message and "legacy.py" in message


@needs_fixtures
def test_unknown_persistent_class(tmp_path):
    data = fixture("sg2-32").read_bytes()
    # the class name is pickled once (SHORT_BINUNICODE, length 10) and memo-referenced after;
    # a same-length rename keeps the protocol-4 frame lengths valid
    original, renamed = b"\x8c\nToRGBLayer", b"\x8c\nNoiseToRGB"
    assert data.count(original) == 1
    path = write_pickle(tmp_path / "fork.pkl", data.replace(original, renamed))
    with pytest.raises(SnapshotError) as caught:
        formats.load(path)
    message = assert_one_line_naming(caught.value, path)
    assert "'NoiseToRGB'" in message and "G_ema.synthesis.b4.torgb" in message


@needs_fixtures
def test_snapshot_with_a_tensor_missing(tmp_path):
    node = read_snapshot(fixture("sg2-32"))
    node.children["mapping"].state["_buffers"].pop("w_avg")
    with pytest.raises(SnapshotError) as caught:
        stylegan2.from_persistent(node, where=tmp_path / "x.pkl")
    assert "mapping.w_avg" in assert_one_line_naming(caught.value, tmp_path / "x.pkl")


def test_safetensors_without_a_ganclip_config(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "biggan.safetensors"
    save_file({"embeddings.weight": torch.zeros(4, 4)}, str(path))
    for read in (formats.read_header, formats.load):
        with pytest.raises(WeightsError) as caught:
            read(path)
        message = assert_one_line_naming(caught.value, path)
        assert "not a ganclip StyleGAN file" in message and "--model biggan-deep-" in message


def test_safetensors_that_is_not_one(tmp_path):
    path = write_pickle(tmp_path / "junk.safetensors", b"\xff" * 64)
    with pytest.raises(WeightsError) as caught:
        formats.load(path)
    assert "not a safetensors file" in assert_one_line_naming(caught.value, path)


def test_safetensors_of_an_unknown_family_or_wrong_tensors(tmp_path):
    from safetensors.torch import save_file

    generator = stylegan2.Generator.from_config(tiny_config(8))
    tensors = {k: v.contiguous() for k, v in generator.state_dict().items()}
    header = {"format_version": 1, "config": {**generator.config(), "family": "stylegan9"}}
    path = tmp_path / "odd.safetensors"
    save_file(tensors, str(path), metadata={"ganclip": json.dumps(header)})
    with pytest.raises(WeightsError) as caught:
        formats.load(path)
    assert "'stylegan9'" in assert_one_line_naming(caught.value, path)

    header["config"] = generator.config()
    del tensors["synthesis.b8.conv0.weight"]
    save_file(tensors, str(path), metadata={"ganclip": json.dumps(header)})
    with pytest.raises(WeightsError) as caught:
        formats.load(path)
    assert "synthesis.b8.conv0.weight" in assert_one_line_naming(caught.value, path)


def test_other_suffixes_are_refused(tmp_path):
    with pytest.raises(WeightsError) as caught:
        formats.load(tmp_path / "model.pt")
    assert_one_line_naming(caught.value, tmp_path / "model.pt")


# --- random nets and the protocol ----------------------------------------------------------

@pytest.mark.parametrize("architecture", ["skip", "orig", "resnet"])
def test_random_nets_draw(architecture):
    config = tiny_config(64, c_dim=5, architecture=architecture)
    generator = stylegan2.Generator.from_config(config)
    assert json.loads(json.dumps(generator.config())) == generator.config() == config
    assert generator.num_ws == 10  # 1 at 4 px, 2 per octave from 8 to 64, the last RGB
    z = torch.randn(2, 32)
    with torch.no_grad():
        img = generator(z, torch.eye(5)[[0, 4]], 0.5)
    assert img.shape == (2, 3, 64, 64) and img.dtype == torch.float32
    assert torch.isfinite(img).all() and img.std() > 0
    again = stylegan2.Generator.from_config(config)
    assert all(torch.equal(a, b) for a, b in zip(generator.state_dict().values(),
                                                 again.state_dict().values()))


def test_published_configs():
    sg2 = formats.random_config("stylegan2", 1024)["kwargs"]
    assert sg2["synthesis_kwargs"]["channel_base"] == 32768
    assert formats.random_config("stylegan2", 256)["kwargs"]["synthesis_kwargs"][
        "channel_base"] == 16384
    assert sg2["mapping_kwargs"] == {"num_layers": 8} and sg2["z_dim"] == 512
    r = formats.random_config("stylegan3-r", 512)
    assert r["family"] == "stylegan3" and r["kwargs"]["channel_base"] == 65536
    assert r["kwargs"]["conv_kernel"] == 1 and r["kwargs"]["use_radial_filters"]
    t = formats.random_config("stylegan3-t", 512)["kwargs"]
    assert (t["channel_base"], t["channel_max"], t["mapping_kwargs"]) == (32768, 512,
                                                                          {"num_layers": 2})
    with pytest.raises(BadInputError):
        formats.random_config("stylegan2", 100)
    # the full 1024 px net builds (no forward: benchmarks time that)
    generator = stylegan2.Generator.from_config(formats.random_config("stylegan2", 1024))
    assert generator.num_ws == 18 and formats.describe(generator)["img_resolution"] == 1024


def test_noise_gain_scales_each_samples_noise():
    generator = with_noise(stylegan2.Generator.from_config(tiny_config(32)))
    ws = generator.mapping(torch.randn(2, 32))
    draw = lambda **kw: generator.synthesis(ws, **kw)  # noqa: E731
    with torch.no_grad():
        const, none = draw(noise_mode="const"), draw(noise_mode="none")
        assert (const - none).abs().max() > 1e-3
        assert torch.equal(draw(noise_gain=torch.zeros(2)), none)
        assert torch.equal(draw(noise_gain=torch.ones(2)), const)
        mixed = draw(noise_gain=torch.tensor([0.0, 1.0]))
        assert torch.equal(mixed[0], none[0]) and torch.equal(mixed[1], const[1])
        double = draw(noise_gain=torch.tensor([2.0, 2.0]))
        assert (double - none).abs().max() > (const - none).abs().max()
        first, second = draw(noise_mode="random"), draw(noise_mode="random")
        assert not torch.equal(first, second) and not torch.equal(first, const)
    with pytest.raises(BadInputError):
        draw(noise_gain=torch.ones(3))
    with pytest.raises(BadInputError):
        draw(noise_mode="loud")


def test_truncation_per_sample_and_cutoff():
    mapping = MappingNetwork(8, 0, 8, 6, num_layers=2)
    mapping.w_avg.normal_()
    z = torch.randn(2, 8)
    with torch.no_grad():
        full, half = mapping(z, truncation_psi=1.0), mapping(z, truncation_psi=0.5)
        mixed = mapping(z, truncation_psi=torch.tensor([1.0, 0.5]))
        cut = mapping(z, truncation_psi=0.5, truncation_cutoff=2)
    assert torch.equal(mixed[0], full[0]) and torch.allclose(mixed[1], half[1])
    assert torch.allclose(half, mapping.w_avg + 0.5 * (full - mapping.w_avg))
    assert torch.equal(cut[:, :2], half[:, :2]) and torch.equal(cut[:, 2:], full[:, 2:])
    with pytest.raises(BadInputError):
        mapping(torch.randn(2, 7))


def test_conditional_net_needs_a_label():
    generator = stylegan2.Generator.from_config(tiny_config(8, c_dim=3))
    with pytest.raises(BadInputError, match="class-conditional"):
        generator(torch.randn(1, 32))


def test_conv_clamp_bounds_every_layer():
    generator = stylegan2.Generator.from_config(tiny_config(16, conv_clamp=0.5))
    outputs = []
    for module in generator.modules():
        if isinstance(module, (stylegan2.SynthesisLayer, stylegan2.ToRGBLayer)):
            module.register_forward_hook(lambda m, args, out: outputs.append(out))
    with torch.no_grad():
        generator(torch.randn(2, 32))
    assert len(outputs) == 5 + 3 and all(out.abs().max() <= 0.5 for out in outputs)
    assert max(out.abs().max() for out in outputs) == 0.5  # reached, so it did something


@needs_fixtures
def test_half_precision_stays_close():
    generator = formats.load(fixture("sg2-32"))
    z = torch.from_numpy(np.random.RandomState(0).randn(2, 64).astype(np.float32))
    with torch.no_grad():
        reference = generator(z)
        half = generator.half()(z)  # CPU fp16 here; the same code path as CUDA's
    assert half.dtype == torch.float32 and torch.isfinite(half).all()
    error = (half - reference).abs()
    scale = reference.abs().max()
    assert error.mean() < 0.01 * scale and error.max() < 0.05 * scale


# --- resampling convolution against its definition -----------------------------------------

@pytest.mark.parametrize("kernel,flip_weight,groups", [(3, False, 1), (3, True, 2), (1, True, 1)])
def test_upsampling_conv_is_zero_insertion_filter_conv(kernel, flip_weight, groups):
    rng = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 5, 6, generator=rng, dtype=torch.float64)
    w = torch.randn(6, 4 // groups, kernel, kernel, generator=rng, dtype=torch.float64)
    f = setup_filter([1, 3, 3, 1]).double()
    pad = kernel // 2
    fast = conv2d_resample(x, w, f, up=2, padding=pad, groups=groups, flip_weight=flip_weight)
    # the definition: insert zeros and FIR-filter (padding for the filter and the kernel),
    # then an unpadded convolution
    fw = 4
    slow = upfirdn2d(x, f, up=2, padding=(pad + (fw + 1) // 2, pad + (fw - 2) // 2) * 2, gain=4)
    slow = torch.nn.functional.conv2d(slow, w if flip_weight else w.flip([2, 3]), groups=groups)
    assert fast.shape == slow.shape == (2, 6, 10, 12)
    torch.testing.assert_close(fast, slow)
