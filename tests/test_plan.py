"""The plan's typed metadata, and plan files of earlier versions."""

import json

import numpy as np
import pytest

import ganclip
from ganclip.errors import BadInputError
from ganclip.plan import Plan


def test_a_version_2_plan_loads_with_its_metadata_as_fields(song, tmp_path):
    plan = ganclip.analyze(song, fps=10, start=0.5)
    settings = {**plan.settings, "start": 0.5, "audio_seconds": 2.5, "model": "cppn",
                "size": 64}
    np.savez(tmp_path / "v2.npz", version=2, fps=plan.fps, times=plan.times, z=plan.z,
             mix=plan.mix, classes=plan.classes, truncation=plan.truncation, type=plan.look,
             type_names=np.array(plan.type_names), settings=json.dumps(settings),
             beats=plan.beats, sections=plan.sections, section_labels=plan.section_labels)
    old = Plan.load(tmp_path / "v2.npz")
    assert (old.start, old.audio_seconds, old.model, old.size) == (0.5, 2.5, "cppn", (64, 64))
    assert np.array_equal(old.look, plan.look) and old.settings == plan.settings
    assert "start" not in old.settings and "audio_seconds" not in old.settings


def test_the_part_of_the_song_is_a_field_that_round_trips(song, tmp_path):
    plan = ganclip.analyze(song, fps=10, start=0.5, duration=2.0)
    assert plan.start == 0.5 and plan.audio_seconds == pytest.approx(2.0, abs=1e-3)
    back = Plan.load(plan.save(tmp_path / "p.npz"))
    assert (back.start, back.audio_seconds) == (plan.start, plan.audio_seconds)
    with pytest.raises(BadInputError, match="z is 128-d but the generator takes 64"):
        back.check(64, 1000)
    back.check(128, 1000)


def test_the_camera_palettes_and_symmetry_are_saved_with_the_plan(song, tmp_path):
    plan = ganclip.analyze(song, fps=10, type_names=["snow country", "coral reef"])
    assert plan.zoom.shape == plan.angle.shape == plan.flash.shape == (len(plan),)
    assert plan.shift.shape == (len(plan), 2) and plan.palettes.shape == (2, 5, 3)
    assert plan.symmetry.tolist() == [6, 0]
    plan.save(tmp_path / "p.npz")
    back = Plan.load(tmp_path / "p.npz")
    for name in ("zoom", "angle", "shift", "flash", "palettes", "symmetry"):
        assert np.array_equal(getattr(back, name), getattr(plan, name)), name
    assert back.camera(0, 3).shape == (3, 5) and back.palette(0, 3).shape == (3, 5, 3)


def test_a_version_3_plan_loads_with_a_still_camera(song, tmp_path):
    plan = ganclip.analyze(song, fps=10)
    arrays = dict(np.load(plan.save(tmp_path / "v4.npz")))
    for name in ("zoom", "angle", "shift", "flash", "palettes", "symmetry"):
        arrays.pop(name)
    np.savez(tmp_path / "v3.npz", **{**arrays, "version": 3})
    old = Plan.load(tmp_path / "v3.npz")
    assert np.all(old.zoom == 1) and np.all(old.angle == 0) and np.all(old.flash == 0)
    assert old.palette(0, 2) is None and not old.folds(0, 2).any()
