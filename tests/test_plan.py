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
