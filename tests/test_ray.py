"""Renders on a Ray cluster (ganclip.cluster): the same video as a local render, with nodes
and actors dying under it, resumed across Ray and local, stopped, failing, and refused.

One two-node ``ray.cluster_utils.Cluster`` (one CPU each, 80 MB object stores) serves the
module, as Ray's testing guide advises; the built-in cppn draws 32² frames of the 16 s song
(conftest's ``long_song``: 4 segments). Faults need segments that last: a test joins the
cluster with a ``worker_process_setup_hook`` that slows down (or breaks) every actor, the
way conftest's ``SLOWLY`` slows down a subprocess.
"""

import contextlib
import logging
import os
import signal
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray")

import ganclip  # noqa: E402
from conftest import LONG_FPS as FPS, LONG_SIZE as SIZE, two_part_song  # noqa: E402
from ganclip import cluster, generators  # noqa: E402
from ganclip.cluster import pool as pool_module  # noqa: E402
from ganclip.errors import BadInputError, GanclipError  # noqa: E402
from media import decode_audio, decode_frames  # noqa: E402

STORE = 80 * 2 ** 20  # bytes of object store per node
SEGMENTS = 4  # of the long song


@pytest.fixture(scope="module")
def ray_cluster():
    """A head and one worker node, one CPU each: one actor per node."""
    from ray.cluster_utils import Cluster

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        mp.setenv("RAY_AUTH_MODE", "disabled")  # nothing of the user's ~/.ray is read
        nodes = Cluster(initialize_head=True, head_node_args=dict(
            num_cpus=1, object_store_memory=STORE, include_dashboard=False))
        try:
            nodes.add_node(num_cpus=1, object_store_memory=STORE)
            nodes.wait_for_nodes()
            yield nodes
        finally:
            if ray.is_initialized():
                ray.shutdown()
            nodes.shutdown()


def address(nodes) -> str:
    """The head as 127.0.0.1:PORT: the tests let only loopback through (conftest), and the
    head listens on every interface."""
    return f"127.0.0.1:{nodes.address.rsplit(':', 1)[1]}"


def open_pool(where, **kw) -> cluster.Pool:
    """A pool for the renders below: cppn, 32², seed 0, as render() would load it."""
    return cluster.Pool(where, prepared=generators.prepare("cppn"), quiet=True,
                        load=dict(size=(SIZE, SIZE), seed=0, device="cpu", precision="auto",
                                  quiet=True, fit="extend"), **kw)


@contextlib.contextmanager
def joined(nodes, hook=None):
    """This process joined to the cluster, every worker of it running ``hook`` first; a
    Pool opened inside uses this connection."""
    env = {"worker_process_setup_hook": hook} if hook is not None else None
    ray.init(address=address(nodes), runtime_env=env, log_to_driver=False,
             logging_level=logging.WARNING)
    try:
        yield
    finally:
        ray.shutdown()


def slow_writes(delay: float):
    """A setup hook: every batch of frames is encoded ``delay`` s late, so a segment (5
    batches of 8) lasts ``5 * delay``."""
    def hook():
        import time

        from ganclip import video

        write = video.VideoWriter.write

        def slow(self, frames):
            time.sleep(delay)
            return write(self, frames)

        video.VideoWriter.write = slow

    return hook


def failing_from(frame: int):
    """A setup hook: the generator runs out of memory on the frames from ``frame`` on."""
    def hook():
        import importlib

        render = importlib.import_module("ganclip.render")  # ganclip.render is also a function
        draw = render._frames

        def failing(generator, spec, plan, first, last, size):
            if last > frame:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return draw(generator, spec, plan, first, last, size)

        render._frames = failing

    return hook


def render(song, output, **kw):
    return ganclip.render(song, output=output, fps=FPS, size=SIZE, quiet=True, **kw)


def frames_of(path) -> np.ndarray:
    return np.stack([f.to_ndarray(format="rgb24") for f in decode_frames(path)])


def same_video(path, reference) -> bool:
    ours = frames_of(path)
    return ours.shape == reference.frames.shape and np.array_equal(ours, reference.frames)


def wait_until(condition, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    return condition()


def cpus_free() -> float:
    return ray.available_resources().get("CPU", 0.0)


def test_a_ray_render_is_the_local_render_frame_for_frame_with_one_load_per_actor(
        ray_cluster, long_song, reference, write_wav, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="ganclip.cluster")
    with open_pool(address(ray_cluster)) as pool:
        # both actors up before the first segment, or a quicker one may draw all four
        assert pool.ready() == 2
        result = render(long_song, tmp_path / "ray.mp4", ray=pool)
        assert same_video(result.path, reference)
        ours, rate = decode_audio(result.path)
        theirs, their_rate = decode_audio(reference.path)
        assert rate == their_rate and np.array_equal(ours, theirs)
        assert not (tmp_path / "ray.mp4.parts").exists()
        drawn = [r.getMessage() for r in caplog.records if " drawn on " in r.getMessage()]
        assert len(drawn) == SEGMENTS
        nodes = {m.split("(node ")[1][:8] for m in drawn}
        assert len(nodes) == 2  # spread over both nodes, and -v says which drew what
        assert pool.loads == 2
        for name in ("a.wav", "b.wav"):  # more songs: the actors keep their model
            song = write_wav(two_part_song(seconds=5.0), name=name)
            assert render(song, tmp_path / f"{name}.mp4", ray=pool).frames == 50
        assert pool.loads == 2 and pool.requeued == 0
    assert not ray.is_initialized()  # the pool joined, and left


def test_an_actor_killed_mid_segment_is_restarted_and_the_video_is_the_same(
        ray_cluster, long_song, reference, tmp_path):
    with joined(ray_cluster, slow_writes(0.1)), open_pool(address(ray_cluster)) as pool:
        killed = []

        def kill_one(done, total):
            if not killed:
                victim = max(pool.actors, key=lambda a: a.busy)  # one drawing, one waiting
                assert victim.busy > 0
                os.kill(victim.where["pid"], signal.SIGKILL)
                killed.append((victim, victim.where["pid"]))

        result = render(long_song, tmp_path / "killed.mp4", ray=pool, progress=kill_one)
        assert killed and pool.requeued >= 1  # it really lost segments
        assert same_video(result.path, reference)
        victim, pid = killed[0]  # Ray started the actor again, in a new process
        assert ray.get(victim.handle.where.remote(), timeout=60)["pid"] != pid


def test_a_node_removed_mid_render_still_gives_the_same_video(ray_cluster, long_song,
                                                             reference, tmp_path):
    worker = next(iter(ray_cluster.worker_nodes))
    gone = []  # segments of 1.5 s: its actor is still drawing one when its node goes (a
    # worker notices its node's raylet is gone only after a while, and may finish a short one)
    try:
        with joined(ray_cluster, slow_writes(0.3)), open_pool(address(ray_cluster)) as pool:
            def remove_node(done, total):
                if not gone:
                    ray_cluster.remove_node(worker, allow_graceful=False)
                    gone.append(worker)

            result = render(long_song, tmp_path / "node.mp4", ray=pool, progress=remove_node)
            assert gone and pool.requeued >= 1  # the worker node's actor had segments
            assert same_video(result.path, reference)
    finally:  # the cluster as the other tests expect it
        if gone:
            ray_cluster.add_node(num_cpus=1, object_store_memory=STORE)
            ray_cluster.wait_for_nodes()


def test_renders_resume_across_ray_and_local(ray_cluster, long_song, reference, tmp_path,
                                             caplog):
    def stop_after(frames):
        def progress(done, total):
            if done >= frames:
                raise KeyboardInterrupt
        return progress

    # started here, stopped after two segments, finished on the cluster
    output = tmp_path / "local-then-ray.mp4"
    with pytest.raises(KeyboardInterrupt):
        render(long_song, output, progress=stop_after(80))
    kept = sorted(p.name for p in (tmp_path / f"{output.name}.parts").glob("segment_*.mp4"))
    assert kept == ["segment_00000.mp4", "segment_00001.mp4"]
    caplog.set_level(logging.DEBUG, logger="ganclip.cluster")
    result = render(long_song, output, ray=address(ray_cluster))
    assert len([r for r in caplog.records if " drawn on " in r.getMessage()]) == 2
    assert same_video(result.path, reference)

    # started on the cluster, stopped after a segment, finished here
    output = tmp_path / "ray-then-local.mp4"
    with pytest.raises(KeyboardInterrupt):
        render(long_song, output, ray=address(ray_cluster), progress=stop_after(40))
    kept = list((tmp_path / f"{output.name}.parts").glob("segment_*.mp4"))
    assert 1 <= len(kept) < SEGMENTS  # the first to finish, of either actor
    assert same_video(render(long_song, output).path, reference)


def test_ctrl_c_keeps_the_finished_segments_and_leaves_no_actors(ray_cluster, long_song,
                                                                 tmp_path):
    output = tmp_path / "stopped.mp4"

    def interrupt(done, total):
        raise KeyboardInterrupt

    with joined(ray_cluster, slow_writes(0.05)):
        with open_pool(address(ray_cluster)) as pool:
            handles = [a.handle for a in pool.actors]
            with pytest.raises(KeyboardInterrupt):
                render(long_song, output, ray=pool, progress=interrupt)
            assert pool.actors == []
            for handle in handles:
                with pytest.raises(ray.exceptions.RayActorError):
                    ray.get(handle.where.remote(), timeout=30)
            assert wait_until(lambda: cpus_free() == 2.0)  # the actors' CPUs are free
        kept = list((tmp_path / "stopped.mp4.parts").glob("segment_*.mp4"))
        assert 1 <= len(kept) < SEGMENTS and not output.exists()
        assert all(len(decode_frames(p)) == 40 for p in kept)  # whole segments only


def test_a_generator_error_is_one_line_naming_the_segment_and_keeps_the_rest(
        ray_cluster, long_song, reference, tmp_path):
    output = tmp_path / "oom.mp4"
    with joined(ray_cluster, failing_from(120)), open_pool(address(ray_cluster)) as pool:
        with pytest.raises(GanclipError) as caught:
            render(long_song, output, ray=pool)
        assert pool.requeued == 0  # not retried
    message = str(caught.value)
    assert "\n" not in message
    assert "segment 4 of 4 (frames 120-159)" in message
    assert "RuntimeError: CUDA out of memory" in message and "are kept in" in message
    assert not (tmp_path / "oom.mp4.parts" / "segment_00003.mp4").exists()
    assert same_video(render(long_song, output).path, reference)  # resumed here


def test_no_usable_resources_is_one_line_after_the_wait(ray_cluster, song, tmp_path,
                                                        monkeypatch):
    monkeypatch.setattr(pool_module, "RESOURCE_WAIT", 1.0)
    for kw, need in ((dict(threads=4), "4 CPUs"), (dict(device="cuda"), "1 GPU")):
        with open_pool(address(ray_cluster), **kw) as pool:
            began = time.monotonic()
            with pytest.raises(cluster.ClusterError) as caught:
                render(song, tmp_path / "full.mp4", ray=pool)
            assert time.monotonic() - began < 20
        message = str(caught.value)
        assert "\n" not in message and "no Ray actor could start in 1 s" in message
        assert f"each needs {need}" in message
        assert not (tmp_path / "full.mp4.parts").exists()  # nothing was finished
        with open_pool(address(ray_cluster), **kw) as pool:
            with pytest.raises(cluster.ClusterError, match=f"none within 0.5 s.*{need}"):
                pool.ready(timeout=0.5)


def test_an_address_nobody_listens_on_is_one_line_naming_it_quickly(song, tmp_path):
    assert not ray.is_initialized()
    began = time.monotonic()
    with pytest.raises(cluster.ClusterError) as caught:
        render(song, tmp_path / "nobody.mp4", ray="127.0.0.1:1")
    assert time.monotonic() - began < cluster.CONNECT_TIMEOUT + 5
    message = str(caught.value)
    assert "\n" not in message and "127.0.0.1:1" in message and "ray start --head" in message
    with pytest.raises(cluster.ClusterError, match="127.0.0.1:1"):  # before any analysis
        cluster.check("127.0.0.1:1")
    cluster.check("local")
    with pytest.raises(BadInputError, match="HOST:PORT"):
        render(song, tmp_path / "nobody.mp4", ray="no-port-here")


def test_a_cluster_of_another_ray_version_is_one_line(ray_cluster, song, tmp_path,
                                                      monkeypatch):
    from ray._private import utils

    real = utils.compute_version_info
    monkeypatch.setattr(utils, "compute_version_info", lambda: ("2.59.0", real()[1]))
    try:
        with pytest.raises(cluster.ClusterError) as caught:
            render(song, tmp_path / "old.mp4", ray=address(ray_cluster))
    finally:
        if ray.is_initialized():
            ray.shutdown()
    message = str(caught.value)
    assert "\n" not in message
    assert f"the cluster runs Ray {ray.__version__}" in message and "Ray 2.59.0" in message


def test_without_the_extra_ray_is_one_line_saying_how_to_install_it(song, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "ray", None)
    with pytest.raises(BadInputError, match=r"pip install 'ganclip\[ray\]'"):
        render(song, tmp_path / "no-ray.mp4", ray="local")


def test_weights_travel_as_bytes_and_land_under_the_same_names(tmp_path):
    from ganclip.cluster.worker import pack_weights, unpack_weights

    source = tmp_path / "cache" / "biggan"
    source.mkdir(parents=True)
    (source / "model.safetensors").write_bytes(b"weights" * 1000)
    (source / "config.json").write_text('{"layers": 3}')
    packed = pack_weights(source / "model.safetensors")
    assert sorted(packed["files"]) == ["config.json", "model.safetensors"]
    landed = unpack_weights(packed, root=tmp_path / "node")
    assert landed.name == "model.safetensors" and landed.parent != source
    assert landed.read_bytes() == b"weights" * 1000
    assert (landed.parent / "config.json").read_text() == '{"layers": 3}'
    assert unpack_weights(packed, root=tmp_path / "node") == landed  # written once
    model = tmp_path / "mine.onnx"  # a model file alone: no config.json beside it
    model.write_bytes(b"onnx")
    assert sorted(pack_weights(model)["files"]) == ["mine.onnx"]
    assert pack_weights(None) is None


def test_a_model_file_renders_on_the_cluster_as_it_does_here(ray_cluster, song, tmp_path):
    from tiny_stylegan import tiny

    model = tiny("stylegan2", tmp_path / "tiny.safetensors")
    here = render(song, tmp_path / "here.mp4", model=str(model))
    prepared = generators.prepare(str(model))
    load = dict(size=(SIZE, SIZE), seed=0, device="cpu", precision="auto", quiet=True,
                fit="extend")
    with cluster.Pool(address(ray_cluster), prepared=prepared, load=load) as pool:
        there = render(song, tmp_path / "there.mp4", model=str(model), ray=pool)
        assert pool.loads >= 1
    assert np.array_equal(frames_of(there.path), frames_of(here.path))


def test_with_ray_the_device_is_the_actors_and_is_checked_by_name(ray_cluster, tmp_path,
                                                                 monkeypatch):
    from tiny_stylegan import tiny

    from ganclip.options import split

    monkeypatch.setattr("torch.cuda.is_available", lambda: False)  # this driver: no GPU
    with pytest.raises(BadInputError, match="no CUDA GPU here"):
        split({"device": "cuda"})
    _, gen = split({"device": "cuda", "precision": "fp16"}, remote=True)
    assert (gen.device, gen.precision) == ("cuda", "fp16")
    _, gen = split({}, remote=True)  # left out: the cluster's GPUs if any, else its CPUs
    assert (gen.device, gen.precision) == ("auto", "auto")
    with pytest.raises(BadInputError, match="--device mps with --ray: cpu or cuda"):
        split({"device": "mps"}, remote=True)
    with pytest.raises(BadInputError, match="fp16 needs a CUDA device"):
        split({"device": "cpu", "precision": "fp16"}, remote=True)
    with pytest.raises(BadInputError, match="fp16 needs a CUDA device"):  # no GPU there
        cluster.Pool(address(ray_cluster), prepared=generators.prepare(
                     str(tiny("stylegan2", tmp_path / "tiny.safetensors"))),
                     load=dict(size=(SIZE, SIZE), seed=0, device="auto", precision="fp16",
                               quiet=True, fit="extend"))
    assert not ray.is_initialized()  # closed on the way out


def test_an_address_nobody_listens_on_is_refused_before_the_analysis(long_song, tmp_path,
                                                                     monkeypatch, capsys):
    from ganclip.cli import main
    from test_resume import no_analysis

    no_analysis(monkeypatch, "analysed before trying the cluster's address")
    code = main(["render", str(long_song), "-o", str(tmp_path / "v.mp4"), "--ray",
                 "127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("error: --ray 127.0.0.1:1: no Ray cluster answers")
    assert err.count("\n") == 1 and not (tmp_path / "v.mp4.parts").exists()


def test_three_songs_one_broken_share_the_actors_and_their_models(ray_cluster, long_song,
                                                                   reference, write_wav,
                                                                   tmp_path):
    from ganclip.render import render_many

    songs = [long_song, tmp_path / "broken.wav", write_wav(two_part_song(seconds=5.0),
                                                           name="short.wav")]
    songs[1].write_bytes(b"RIFF, but not a song")
    out = tmp_path / "out"
    out.mkdir()
    with open_pool(address(ray_cluster)) as pool:
        results = render_many(songs, output_dir=out, ray=pool, fps=FPS, size=SIZE, quiet=True)
        assert pool.loads == len(pool.actors) == 2  # once per actor, not once per song
    assert isinstance(results[1], GanclipError) and "broken.wav" in str(results[1])
    assert same_video(results[0].path, reference) and results[2].frames == 50
    assert sorted(p.name for p in out.iterdir()) == ["long song é.mp4", "short.mp4"]


def test_the_page_renders_on_the_cluster_it_was_started_with(ray_cluster, song, tmp_path,
                                                             capsys):
    from ganclip.cli import main
    from ganclip.web import CHOICES, Jobs, _Page

    values = dict(model="cppn", mode="reactive", fps=FPS, size=str(SIZE), fit="extend",
                  types=[], transitions=-1, pulse=0.7, motion=1, smoothing=0.25,
                  sensitivity=1, truncation_lo=0.6, truncation_hi=1.3,
                  classes_from="sections", zoom=1, rotate=1, shake=1, flash=1, looks="",
                  structure=1, texture=1, noise=1, seed=0, start=0, duration=0, quality=20,
                  preset="veryfast")
    page = _Page(Jobs(max_minutes=30, ray=address(ray_cluster)))
    said, video, _ = page.make(str(song), None, *[values[name] for name in CHOICES],
                               preview=False, progress=lambda *a, **k: None)
    assert said.endswith(f"on Ray ({address(ray_cluster)})"), said
    here = render(song, tmp_path / "here.mp4")
    assert np.array_equal(frames_of(video), frames_of(here.path))
    assert not ray.is_initialized()  # each render joins and leaves
    assert main(["web", "--ray", "127.0.0.1:1", "--port", "7998"]) != 0
    last = capsys.readouterr().err.strip().splitlines()[-1]  # (earlier tests' log lines)
    assert last.startswith("error: --ray 127.0.0.1:1: no Ray cluster")
