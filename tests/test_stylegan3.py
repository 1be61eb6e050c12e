"""StyleGAN3 (T and R): equal to NVIDIA's outputs on the tiny snapshots in
``../shared/fixtures/stylegan`` (skipped without them), the camera's units shown by the
picture itself, strict loading, random configs."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ganclip.errors import BadInputError
from ganclip.generators.stylegan import stylegan3, stylegan3_ops
from ganclip.generators.stylegan.snapshot import SnapshotError, plain, read_snapshot

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "stylegan"
SNAPSHOTS = ("sg3-r-32", "sg3-t-32")
RTOL = 1e-4  # plus an atol of 1e-4 of the reference's largest value (the README's advice)
# the fixture's camera: gen_images.py's make_transform((0.1, -0.2), 0.3 rad), inverted
FIXTURE_TRANSLATE, FIXTURE_ANGLE = (0.1, -0.2), 0.3
TINY = dict(z_dim=32, c_dim=0, w_dim=32, img_channels=3, channel_base=128, channel_max=16)
CONFIGS = {"t": {}, "r": dict(conv_kernel=1, use_radial_filters=True)}

needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"{FIXTURES} absent")


def assert_matches(actual, expected):
    actual = actual.detach().numpy() if isinstance(actual, torch.Tensor) else actual
    atol = 1e-4 * float(np.abs(expected).max())
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=atol)


@pytest.fixture(scope="module", params=SNAPSHOTS)
def fixture(request):
    """(model loaded from the snapshot, its expected outputs, its name)."""
    if not FIXTURES.is_dir():
        pytest.skip(f"{FIXTURES} absent")
    name = request.param
    model = stylegan3.from_persistent(read_snapshot(FIXTURES / f"{name}.pkl"))
    with np.load(FIXTURES / f"{name}.expected.npz", allow_pickle=False) as npz:
        expected = dict(npz)
    return model, expected, name


def inputs(expected):
    return torch.from_numpy(expected["z"]), torch.from_numpy(expected["c"])


@torch.no_grad()
def test_mapping_matches_nvidia(fixture):
    model, expected, _ = fixture
    z, c = inputs(expected)
    assert_matches(model.mapping(z, c, truncation_psi=1.0), expected["w"])
    assert_matches(model.mapping(z, c, truncation_psi=0.7), expected["w_psi07"])


@torch.no_grad()
def test_images_match_nvidia(fixture):
    model, expected, _ = fixture
    z, c = inputs(expected)
    assert model.num_ws == int(expected["num_ws"]) and model.z_dim == int(expected["z_dim"])
    assert_matches(model(z, c, truncation_psi=1.0), expected["img"])
    assert_matches(model(z, c, truncation_psi=0.7), expected["img_psi07"])
    assert_matches(model.synthesis(torch.from_numpy(expected["w_psi07"])),
                   expected["img_from_w"])


@torch.no_grad()
def test_transform_buffer_matches_nvidia(fixture):
    model, expected, _ = fixture
    z, c = inputs(expected)
    buffer = model.synthesis.input.transform
    saved = buffer.clone()
    try:
        buffer.copy_(torch.from_numpy(expected["transform"]))
        assert_matches(model(z, c), expected["img_transform"])
    finally:
        buffer.copy_(saved)


@torch.no_grad()
def test_transform_per_sample_matches_the_buffer_and_leaves_it(fixture):
    model, expected, _ = fixture
    z, c = inputs(expected)
    stack = np.repeat(expected["transform"][None], len(z), axis=0)  # [4, 3, 3]
    assert_matches(model(z, c, transform=torch.from_numpy(stack)), expected["img_transform"])
    assert torch.equal(model.synthesis.input.transform, torch.eye(3))


@torch.no_grad()
def test_each_sample_has_its_own_transform(fixture):
    model, expected, _ = fixture
    ws = torch.from_numpy(expected["w"][:2])
    cams = stylegan3.user_transform(np.array([0.3, -1.1]), np.array([0.1, -0.05]),
                                    np.array([0.0, 0.2]), zoom=np.array([1.0, 1.3]))
    batch = model.synthesis(ws, transform=cams).numpy()
    for i in range(2):
        alone = model.synthesis(ws[i:i + 1], transform=cams[i]).numpy()
        assert_matches(batch[i:i + 1], alone)
    assert np.abs(batch[0] - model.synthesis(ws[:1]).numpy()[0]).max() > 0.01  # it moved


def test_user_transform_reproduces_gen_images_matrix():
    """user_transform(a, s) == inv(make_transform(t, a)) for s = -R(a) t."""
    a = FIXTURE_ANGLE
    rotate = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    shift = -rotate @ np.array(FIXTURE_TRANSLATE)
    ours = stylegan3.user_transform(a, shift[0], shift[1])
    inverse = np.linalg.inv(stylegan3.make_transform(FIXTURE_TRANSLATE, a))
    np.testing.assert_allclose(ours, inverse, atol=1e-12)
    if FIXTURES.is_dir():
        with np.load(FIXTURES / "sg3-t-32.expected.npz", allow_pickle=False) as npz:
            np.testing.assert_allclose(ours, npz["transform_f64"], atol=1e-12)
    many = stylegan3.user_transform(np.full(5, a), shift[0], shift[1], zoom=np.full(5, 2.0))
    assert many.shape == (5, 3, 3)
    np.testing.assert_allclose(many[3, :2, :2], ours[:2, :2] / 2)


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def tiny(request):
    """A random 32² generator of config T or R (its letter, the model)."""
    config = {"family": "stylegan3",
              "kwargs": dict(TINY, img_resolution=32, **CONFIGS[request.param])}
    return request.param, stylegan3.Generator.from_config(config, seed=1)


@torch.no_grad()
@pytest.mark.parametrize("pixels", [1, 3])
def test_camera_shift_moves_the_picture_by_whole_pixels(tiny, pixels):
    """Units: one image width is the picture's width; x right, y down. Moving the camera
    right (down) by k pixels shows the picture moved left (up) by k: exact away from the
    edges, as both configs are translation-equivariant."""
    _, model = tiny
    ws = model.mapping(torch.randn(2, model.z_dim, generator=torch.Generator().manual_seed(0)))
    still = model.synthesis(ws).numpy()
    step = pixels / model.img_resolution
    right = model.synthesis(ws, transform=stylegan3.user_transform(0, step, 0)).numpy()
    down = model.synthesis(ws, transform=stylegan3.user_transform(0, 0, step)).numpy()
    inner = slice(4, -4 - pixels)
    scale = np.abs(still).max()
    assert np.abs(right[..., 4:-4, inner] - still[..., 4:-4, 4 + pixels:-4]).max() < 0.02 * scale
    assert np.abs(down[..., inner, 4:-4] - still[..., 4 + pixels:-4, 4:-4]).max() < 0.02 * scale
    assert np.abs(right[..., 4:-4, 4 + pixels:-4] - still[..., 4:-4, inner]).max() > 0.1 * scale


@torch.no_grad()
@pytest.mark.parametrize("tiny", ["r"], indirect=True)  # only R is rotation-equivariant
def test_a_quarter_turn_of_config_r_turns_the_picture_counterclockwise(tiny):
    _, model = tiny
    ws = model.mapping(torch.randn(2, model.z_dim, generator=torch.Generator().manual_seed(0)))
    still = model.synthesis(ws).numpy()
    turned = model.synthesis(ws, transform=stylegan3.user_transform(np.pi / 2, 0, 0)).numpy()
    inner = (..., slice(4, -4), slice(4, -4))
    np.testing.assert_allclose(turned[inner], np.rot90(still, 1, axes=(2, 3))[inner],
                               atol=1e-3 * np.abs(still).max())


@pytest.mark.parametrize("letter", sorted(CONFIGS))
@pytest.mark.parametrize("resolution", [16, 32])
def test_random_configs_draw_finite_pictures(letter, resolution):
    config = {"family": "stylegan3",
              "kwargs": dict(TINY, img_resolution=resolution, **CONFIGS[letter])}
    model = stylegan3.Generator.from_config(json.loads(json.dumps(config)), seed=3)
    assert json.loads(json.dumps(model.config())) == model.config()
    with torch.no_grad():
        img = model(torch.randn(2, 32), None, truncation_psi=0.5)
        again = stylegan3.Generator.from_config(model.config(), seed=3).synthesis(
            model.mapping(torch.zeros(1, 32)))
    assert img.shape == (2, 3, resolution, resolution) and img.dtype == torch.float32
    assert torch.isfinite(img).all() and img.std() > 0
    assert torch.equal(again, model.synthesis(model.mapping(torch.zeros(1, 32))))
    assert model.num_ws == 16 and model.synthesis.layer_names[-1] == f"L14_{resolution}_3"


@needs_fixtures
@pytest.mark.parametrize("name", SNAPSHOTS)
def test_designed_filters_are_nvidias(name):
    """from_config designs the filters the snapshot stores (Kaiser; R's jinc)."""
    node = read_snapshot(FIXTURES / f"{name}.pkl")
    kwargs = plain(node.init_kwargs)
    model = stylegan3.Generator.from_config({"family": "stylegan3", "kwargs": kwargs})
    theirs = node.tensors()
    filters = [k for k in model.state_dict() if k.endswith(("up_filter", "down_filter"))]
    assert any(theirs[k].ndim == 2 for k in filters) == (name == "sg3-r-32")
    for key in filters:
        torch.testing.assert_close(model.state_dict()[key], theirs[key], rtol=0, atol=1e-6)


@needs_fixtures
def test_an_unknown_class_is_refused_by_name():
    node = read_snapshot(FIXTURES / "sg3-t-32.pkl")
    layer = node.children["synthesis"].children["L3_36_32"]
    layer.class_name = "SynthesisLayerWithExtras"
    with pytest.raises(SnapshotError) as err:
        stylegan3.from_persistent(node, where="x.pkl")
    message = str(err.value)
    assert "\n" not in message and "SynthesisLayerWithExtras" in message
    assert "G_ema.synthesis.L3_36_32" in message and message.startswith("x.pkl")


@needs_fixtures
def test_missing_tensors_and_unknown_options_are_one_line():
    node = read_snapshot(FIXTURES / "sg3-r-32.pkl")
    broken = copy.deepcopy(node)
    del broken.children["synthesis"].children["L5_52_54"].state["_buffers"]["up_filter"]
    with pytest.raises(SnapshotError, match=r"lacks 1 tensor\(s\) \(synthesis\.L5_52_54\.up"):
        stylegan3.from_persistent(broken)
    odd = copy.deepcopy(node)
    odd.state["_init_kwargs"]["wobble"] = 3
    with pytest.raises(SnapshotError, match="wobble") as err:
        stylegan3.from_persistent(odd)
    assert "\n" not in str(err.value)


def test_bad_configs_and_transforms_are_refused():
    with pytest.raises(BadInputError, match="family 'stylegan2'"):
        stylegan3.Generator.from_config({"family": "stylegan2", "kwargs": {}})
    config = {"family": "stylegan3", "kwargs": dict(TINY, img_resolution=16, wobble=1)}
    with pytest.raises(BadInputError, match="wobble"):
        stylegan3.Generator.from_config(config)
    model = stylegan3.Generator.from_config(
        {"family": "stylegan3", "kwargs": dict(TINY, img_resolution=16)})
    ws = model.mapping(torch.zeros(2, 32))
    with pytest.raises(BadInputError, match=r"\[2, 3, 3\]"):
        model.synthesis(ws, transform=torch.eye(3).expand(3, 3, 3))
    with pytest.raises(BadInputError, match="zoom"):
        stylegan3.user_transform(0, 0, 0, zoom=0)


def test_half_keeps_the_fourier_input_float32():
    model = stylegan3.Generator.from_config(
        {"family": "stylegan3", "kwargs": dict(TINY, img_resolution=16)})
    w = model.mapping(torch.randn(2, 32))[:, 0]
    features = model.synthesis.input(w)
    half = copy.deepcopy(model).half()
    assert half.synthesis.L0_36_16.weight.dtype == torch.float16
    assert {t.dtype for t in half.synthesis.input.state_dict().values()} == {torch.float32}
    assert torch.equal(half.synthesis.input(w), features)
    ws = model.mapping(torch.randn(2, 32))
    with torch.no_grad():
        full = model.synthesis(ws)
        try:
            drawn = half.synthesis(ws.half())
        except RuntimeError as exc:  # an older torch without fp16 convolutions on CPUs
            pytest.skip(f"fp16 on this CPU: {exc}")
    assert drawn.dtype == torch.float32
    psnr = 10 * torch.log10(full.abs().max() ** 2 / (drawn - full).square().mean())
    assert psnr > 40


@torch.no_grad()
def test_drawing_a_few_channels_at_a_time_changes_nothing(tiny, monkeypatch):
    """The memory bound (TEMP_BYTES) splits the filtered nonlinearity by sample and by
    channel; the pictures are the same."""
    _, model = tiny
    ws = model.mapping(torch.randn(3, model.z_dim, generator=torch.Generator().manual_seed(2)))
    whole = model.synthesis(ws)
    for budget in (1, 50_000, 800_000):  # a channel of a sample; a few channels; 2 samples
        monkeypatch.setattr(stylegan3_ops, "TEMP_BYTES", budget)
        torch.testing.assert_close(model.synthesis(ws), whole, rtol=0, atol=1e-6)


def test_gradients_reach_w(tiny):
    """Latents can be optimised through the network (a CLIP-guided search does)."""
    _, model = tiny
    ws = model.mapping(torch.randn(2, model.z_dim, generator=torch.Generator().manual_seed(4)))
    ws = ws.detach().requires_grad_(True)
    model.synthesis(ws).square().mean().backward()
    assert torch.isfinite(ws.grad).all() and ws.grad.abs().sum() > 0
