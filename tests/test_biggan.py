"""BigGAN-deep: equal to pytorch-pretrained-biggan, strict and safe loading, the protocol.

A tiny random model (4 channels per unit, 32², attention included) stands in for the published
weights; equivalence tests run it through the reference package too and skip without it.
"""

import json
import os
import threading

import numpy as np
import pytest
import torch

from ganclip.errors import BadInputError, WeightsError
from ganclip.generators.biggan import fast as biggan_fast
from ganclip.generators.biggan import ops as biggan_ops
from ganclip.generators.biggan import (BIGGAN_DEEP_128, BIGGAN_DEEP_256, BIGGAN_DEEP_512,
                                       BigGANConfig, BigGANGenerator, build_biggan, load_biggan,
                                       precision_psnr, random_inputs, random_state_dict,
                                       to_uint8, truncation_weights)
from tiny_biggan import TINY


@pytest.fixture(scope="module")
def state():
    """Tiny random weights; every row of stored statistics made distinct, so that which rows a
    truncation reads, and with which weights, shows in the picture."""
    state = random_state_dict(TINY, seed=0)
    gen = torch.Generator().manual_seed(1)
    for name, rows in state.items():
        if name.endswith("running_means"):
            rows += 0.3 * torch.randn(rows.shape, generator=gen)
        elif name.endswith("running_vars"):
            rows *= torch.exp(0.3 * torch.randn(rows.shape, generator=gen))
    return state


@pytest.fixture(scope="module")
def gen(state):
    return BigGANGenerator(build_biggan(state, TINY), precision="fp32")


@pytest.fixture
def folder(tmp_path, state):
    """The published layout: pytorch_model.bin and config.json side by side."""
    torch.save(state, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(json.dumps(TINY.to_dict()))
    return tmp_path


def inputs(n, *, seed=1):
    return random_inputs(n, seed=seed)  # z [n, 128] in [-2, 2], y [n, 1000] two-class mixes


# ---------------------------------------------------------------------------------------------
# the reference


@pytest.fixture(scope="module")
def ref():
    return pytest.importorskip("pytorch_pretrained_biggan")


@pytest.fixture(scope="module")
def reference_folder(ref, state, tmp_path_factory):
    """Weights saved from the reference's own model and config writer, as published."""
    config = ref.BigGANConfig.from_dict(TINY.to_dict())
    model = ref.BigGAN(config)
    model.load_state_dict(state, strict=True)  # well-conditioned random weights, its layout
    folder = tmp_path_factory.mktemp("reference")
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    (folder / "config.json").write_text(config.to_json_string())
    return folder, model.eval()


def run_reference(model, noise, y, truncation):
    with torch.no_grad():
        return model(torch.as_tensor(noise), torch.as_tensor(y), truncation)


@pytest.mark.parametrize("truncation", [0.4, 1.0, 0.413])  # on the stats grid, and between
def test_output_equals_the_reference(monkeypatch, reference_folder, truncation):
    # the last block in bands of 6 rows and a last band of 2 (32 rows), not one band
    monkeypatch.setattr(biggan_fast, "BAND_PIXELS", 6 * 32)
    folder, reference = reference_folder
    ours = load_biggan(folder, precision="fp32")
    z, y = inputs(3)
    noise = z * np.float32(truncation)
    expected = run_reference(reference, noise, y, truncation)
    per_sample = np.full(3, truncation)
    with torch.no_grad():
        plain = ours.model(torch.as_tensor(noise), torch.as_tensor(y), per_sample)
    fast = ours.fast(noise, y, per_sample)
    assert expected.abs().mean() > 0.1  # a real picture, not saturated nor blank
    assert (expected.abs() > 0.99).float().mean() < 0.1
    assert (plain - expected).abs().max() < 1e-4
    assert (fast - expected).abs().max() < 1e-4
    # the protocol call: z unit latent, noise = z × truncation inside
    frames = ours(z, y, per_sample)
    assert np.abs(frames.astype(int) - to_uint8(expected).astype(int)).max() <= 1


def test_per_frame_truncation_equals_the_reference_frame_by_frame(reference_folder):
    folder, reference = reference_folder
    ours = load_biggan(folder, precision="fp32")
    z, y = inputs(3)
    truncation = np.array([0.345, 0.618, 1.0])
    noise = z * truncation[:, None].astype(np.float32)
    expected = torch.cat([run_reference(reference, noise[i:i + 1], y[i:i + 1], truncation[i])
                          for i in range(3)])
    assert (ours.fast(noise, y, truncation) - expected).abs().max() < 1e-4


def test_state_dict_and_configs_are_the_published_ones(ref, reference_folder, state):
    from pytorch_pretrained_biggan.convert_tf_to_pytorch import BigGAN128, BigGAN256, BigGAN512

    for theirs, ours in ((BigGAN128, BIGGAN_DEEP_128), (BigGAN256, BIGGAN_DEEP_256),
                         (BigGAN512, BIGGAN_DEEP_512)):
        assert BigGANConfig.from_dict(theirs.to_dict()) == ours
    # the same code builds every config: the tiny one has every kind of layer
    theirs = reference_folder[1].state_dict()
    assert {k: v.shape for k, v in theirs.items()} == {k: v.shape for k, v in state.items()}


def test_the_plain_ops_path_draws_the_same(monkeypatch, state, gen):
    # where torch lacks the packed oneDNN ops (and on CUDA) the fast path runs plain ops;
    # attention in blocks of 24 queries here (24, 24, 16), not one block of all 64
    monkeypatch.setattr(biggan_ops, "_packed_ops", lambda: False)
    monkeypatch.setattr(biggan_fast, "ATTENTION_QUERIES", 24)
    plain = BigGANGenerator(build_biggan(state, TINY), precision="fp32")
    convs = [conv for step in plain.fast.plan if step[0] == "block" for conv in step[3]]
    assert convs and all(conv.packs is None for conv in convs)
    z, y = inputs(3)
    t = np.array([0.3, 0.6, 1.0])
    assert (plain.fast(z * t[:, None], y, t) - gen.fast(z * t[:, None], y, t)).abs().max() < 1e-5


def test_the_tail_runs_one_sample_at_a_time_with_its_norms_folded(monkeypatch, gen):
    # On the CPU a batch shares the weight-heavy head (blocks 0-1 and the attention here) and
    # goes one sample at a time through the last 3 blocks: there every norm after a conv folds
    # into that conv and the last norm is applied band by band, so only the head's 2 × 3 norms
    # are separate passes over a whole batch; the plain path has 5 × 3 + the last one.
    if not biggan_ops._packed_ops():
        pytest.skip("this torch lacks the packed oneDNN conv ops: everything runs plain")
    passes = []
    real = biggan_ops._affine_relu
    for module in (biggan_ops, biggan_fast):  # the convs' norm_relu, and the last norm
        monkeypatch.setattr(module, "_affine_relu",
                            lambda x, *a, **k: passes.append(len(x)) or real(x, *a, **k))
    z, y = inputs(2)
    gen(z, y, np.full(2, 0.5))
    assert gen.fast.split == 3 and gen.fast.plan[2][0] == "attention"
    assert passes == [2] * 6
    passes.clear()
    monkeypatch.setattr(biggan_ops, "_packed_ops", lambda: False)
    BigGANGenerator(gen.model, precision="fp32")(z, y, np.full(2, 0.5))
    assert passes == [2] * 16


def test_the_tail_runs_samples_side_by_side_and_leaves_torch_threads_as_they_were(state):
    # 2 torch threads and 3 samples: 2 workers of 1 thread each take the samples through the
    # tail, one of them 2 samples on its own buffers; the caller keeps its 2 threads, and so
    # does a thread started afterwards (the workers' setting is also torch's default)
    if not biggan_ops._packed_ops():
        pytest.skip("this torch lacks the packed oneDNN conv ops: the batch runs whole")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        gen = BigGANGenerator(build_biggan(state, TINY), precision="fp32")
        z, y = inputs(3)
        t = np.array([0.4, 0.6, 0.9])
        noise = z * t[:, None].astype(np.float32)
        with torch.no_grad():
            expected = gen.model(torch.as_tensor(noise), torch.as_tensor(y), t)
        first, again = gen.fast(noise, y, t), gen.fast(noise, y, t)
        assert gen.fast.pool[0] == (2, 2)
        assert (first - expected).abs().max() < 1e-4
        assert torch.equal(first, again)
        assert torch.get_num_threads() == 2
        seen = []
        worker = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        worker.start()
        worker.join()
        assert seen == [2]
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("threads, batch, workers", [
    (2, 1, None), (2, 8, 2), (3, 2, None), (3, 8, 3), (6, 8, 3), (16, 8, 4), (16, 2, 2)])
def test_tail_workers_are_at_most_4_and_share_the_threads_evenly(gen, threads, batch, workers):
    # each sample in flight holds its own tail tensors: a 16-core machine runs 4, not 8
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        pool = gen.fast._tail_pool(batch)
        assert (pool is None) if workers is None else gen.fast.pool[0] == (workers, threads)
    finally:
        torch.set_num_threads(before)


def test_truncation_reads_the_statistics_as_the_reference_does():
    # on the grid: that row alone; between rows the reference's weights are swapped
    lo, hi, w_lo, w_hi = truncation_weights(np.array([0.4, 0.405, 1.0]), 51)
    assert lo.tolist() == [20, 20, 50] and hi.tolist() == [21, 21, 50]
    np.testing.assert_allclose(w_lo, [1.0, 0.25, 1.0], atol=1e-9)
    np.testing.assert_allclose(w_hi, [0.0, 0.75, 0.0], atol=1e-9)
    # a float32 plan's 0.4 is 0.4000000059…: still row 20, as the literal 0.4 reads
    lo, _, w_lo, w_hi = truncation_weights(np.float32([0.4, 0.62]), 51)
    assert lo.tolist() == [20, 31] and w_lo.tolist() == [1.0, 1.0] and w_hi.tolist() == [0, 0]


# ---------------------------------------------------------------------------------------------
# loading


def test_a_folder_loads_and_draws_like_the_module(folder, gen):
    loaded = load_biggan(folder)
    z, y = inputs(2)
    t = np.array([0.5, 0.8])
    assert loaded.precision == "fp32"  # "auto" on a CPU
    assert np.array_equal(loaded(z, y, t), gen(z, y, t))
    for path in (folder / "pytorch_model.bin", folder / "config.json"):
        assert np.array_equal(load_biggan(path)(z, y, t), gen(z, y, t))


def test_missing_and_unexpected_keys_are_named(tmp_path, state):
    broken = dict(state)
    del broken["generator.layers.1.conv_2.weight_u"]
    broken["generator.extra.weight"] = torch.zeros(3)
    torch.save(broken, tmp_path / "pytorch_model.bin")
    with pytest.raises(WeightsError) as e:
        load_biggan(tmp_path / "pytorch_model.bin", config=TINY)
    message = str(e.value)
    assert "generator.layers.1.conv_2.weight_u" in message
    assert "generator.extra.weight" in message and "\n" not in message


def test_weights_for_another_config_are_refused(folder):
    other = BigGANConfig(**{**TINY.__dict__, "channel_width": 8})
    with pytest.raises(WeightsError, match="wrong shape"):
        load_biggan(folder, config=other)


def test_safetensors_loads_the_same(tmp_path, folder, gen):
    safetensors = pytest.importorskip("safetensors.torch")
    safetensors.save_file(torch.load(folder / "pytorch_model.bin", weights_only=True),
                          tmp_path / "model.safetensors")
    z, y = inputs(2)
    t = np.array([0.5, 0.9])
    assert np.array_equal(load_biggan(tmp_path)(z, y, t), gen(z, y, t))  # preferred over .bin


class Payload:
    """Unpickling this would run a shell command; loading must refuse it first."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_runs_code_is_refused(tmp_path, state):
    marker = tmp_path / "ran"
    torch.save({**state, "trap": Payload(marker)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(WeightsError, match="refused for safety"):
        load_biggan(tmp_path / "pytorch_model.bin", config=TINY)
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["garbage", "config field", "no config", "empty folder"])
def test_bad_files_are_weights_errors_naming_them(folder, damage):
    if damage == "garbage":
        (folder / "pytorch_model.bin").write_bytes(b"not a checkpoint" * 10)
        expected = "pytorch_model.bin"
    elif damage == "config field":
        (folder / "config.json").write_text(json.dumps({**TINY.to_dict(), "n_layers": 3}))
        expected = "unknown field 'n_layers'"
    elif damage == "no config":
        (folder / "config.json").unlink()
        expected = "config.json"
    else:
        (folder / "pytorch_model.bin").unlink()
        expected = "pytorch_model.bin"
    with pytest.raises(WeightsError, match=expected):
        load_biggan(folder)


def test_config_missing_field_is_named(tmp_path):
    fields = TINY.to_dict()
    del fields["n_stats"]
    (tmp_path / "config.json").write_text(json.dumps(fields))
    with pytest.raises(WeightsError, match=r"config\.json: missing field 'n_stats'"):
        BigGANConfig.from_json(tmp_path / "config.json")


# ---------------------------------------------------------------------------------------------
# the generator protocol


def test_frames_have_the_protocol_shape(gen):
    z, y = inputs(3)
    frames = gen(z, y, np.full(3, 0.6))
    assert frames.shape == (3, 32, 32, 3) and frames.dtype == np.uint8
    assert (gen.name, gen.dim_z, gen.n_classes, gen.size) == ("biggan-deep-32", 128, 1000,
                                                             (32, 32))
    assert frames.std() > 10  # a picture, not a flat field


def test_deterministic_and_independent_of_the_batch(gen):
    z, y = inputs(4)
    t = np.array([0.3, 0.5, 0.7, 0.9])
    batch = gen(z, y, t)
    assert np.array_equal(batch, gen(z, y, t))
    alone = gen(z[2:3], y[2:3], t[2:3])
    assert np.abs(batch[2:3].astype(int) - alone.astype(int)).max() <= 1


def test_per_frame_truncation_changes_the_frame(gen):
    z, y = inputs(1)
    z, y = np.repeat(z, 2, 0), np.repeat(y, 2, 0)
    calm, wild = gen(z, y, np.array([0.2, 1.0]))
    assert np.abs(calm.astype(int) - wild.astype(int)).mean() > 5


@pytest.mark.parametrize("call", ["z shape", "truncation 0", "truncation 1.5", "t shape"])
def test_bad_inputs_are_bad_input_errors(gen, call):
    z, y = inputs(2)
    t = np.full(2, 0.5)
    args = {"z shape": (z[:, :100], y, t), "truncation 0": (z, y, np.zeros(2)),
            "truncation 1.5": (z, y, np.full(2, 1.5)), "t shape": (z, y, np.full(3, 0.5))}[call]
    with pytest.raises(BadInputError):
        gen(*args)


def test_precisions_are_checked(folder):
    with pytest.raises(BadInputError, match="fp16"):
        load_biggan(folder, precision="fp16")  # on a CPU
    with pytest.raises(BadInputError, match="unknown precision"):
        load_biggan(folder, precision="int8")
    if not torch.cuda.is_available():
        with pytest.raises(BadInputError, match="no CUDA GPU"):
            load_biggan(folder, device="cuda")


def test_bf16_draws_close_to_fp32(gen, state):
    bf16 = BigGANGenerator(build_biggan(state, TINY), precision="bf16")
    z, y = inputs(2)
    frames = bf16(z, y, np.full(2, 0.5))
    assert frames.shape == (2, 32, 32, 3)
    psnr = precision_psnr(gen, "bf16")
    assert 25 < psnr < float("inf")  # close to fp32, yet really computed in bf16
