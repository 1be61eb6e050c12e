"""Mutated real recordings: each decodes or is refused in one line, never a hang or a traceback.

CI runs a few dozen; ``python benchmarks/fuzz.py`` runs hundreds.
"""

import pytest

from fuzzing import SHARED_AUDIO, check_cli, check_decode, mutated_files

pytestmark = pytest.mark.skipif(not SHARED_AUDIO.is_dir(), reason=f"{SHARED_AUDIO} absent")


def test_mutated_files_decode_or_are_refused_in_one_line(tmp_path):
    outcomes = [check_decode(path) for path in mutated_files(tmp_path, 40, seed=1)]
    assert set(outcomes) == {"decoded", "refused"}  # the mutations reach both ends


def test_mutated_files_through_the_cli_end_in_a_video_or_one_line(tmp_path):
    outcomes = [check_cli(path, tmp_path / f"{path.stem}.mp4")
                for path in mutated_files(tmp_path, 5, seed=2)]
    assert "video" in outcomes
