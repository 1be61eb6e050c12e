import librosa
import numpy as np
import pytest

from conftest import tone
from ganclip.features import BandSettings, frame_edges, frame_spectra, to_db
from ganclip.timebase import frame_count

SR = 22050


def blocks(x, size):
    return [x[i:i + size] for i in range(0, len(x), size)]


def test_frame_count_is_rounded_duration_times_fps():
    assert frame_count(3 * SR, sr=SR, fps=30) == 90
    assert frame_count(int(2.5 * SR), sr=SR, fps=1) == 2  # round half to even
    assert frame_count(SR + 400, sr=SR, fps=29.97) == 31  # 1.018 s × 29.97 = 30.51


def test_frame_edges_follow_video_timestamps():
    edges = frame_edges(90, sr=SR, fps=29.97)
    assert edges[0] == 0 and np.all(np.diff(edges) > 0)
    # frame i starts at i / fps seconds, to the nearest sample
    assert np.allclose(edges / SR, np.arange(91) / 29.97, atol=0.5 / SR)


@pytest.mark.parametrize("fps", [1, 10, 24, 30, 60, 90, 120])
def test_a_tone_lands_in_the_same_band_at_any_fps(fps):
    # The seed's bins depended on fps and broke above 65 fps; bands in Hz do not.
    bands = frame_spectra([tone(1000, 2.0)], sr=SR, fps=fps)
    assert bands.shape == (frame_count(2 * SR, sr=SR, fps=fps), BandSettings().n_bands)
    peak = np.bincount(bands.argmax(axis=1)).argmax()
    centres = librosa.mel_frequencies(n_mels=128 + 2, fmin=30.0, fmax=SR / 2)[1:-1]
    assert abs(centres[peak] - 1000) < 60
    assert np.all(np.isfinite(bands))


def test_streaming_does_not_depend_on_block_size():
    x = np.random.default_rng(0).standard_normal(SR * 2).astype(np.float32) * 0.1
    whole = frame_spectra([x], sr=SR, fps=30)
    for size in (1000, 4096, 33333):
        assert np.allclose(frame_spectra(blocks(x, size), sr=SR, fps=30), whole, rtol=1e-5)


def test_each_frame_sees_exactly_its_slice():
    # silence for 1 s, then a tone: frame 29 covers [0.967, 1.0) s and must be silent
    x = np.concatenate([np.zeros(SR, np.float32), tone(440, 1.0)])
    energy = frame_spectra([x], sr=SR, fps=30).sum(axis=1)
    assert energy[:30].max() == 0
    assert energy[30:].min() > 1.0


def test_silence_gives_finite_decibels():
    db = to_db(frame_spectra([np.zeros(SR, np.float32)], sr=SR, fps=30))
    assert np.all(np.isfinite(db)) and np.all(db == db.flat[0])


def test_the_last_partial_frame_is_padded_not_dropped():
    x = tone(440, 1.0 + 0.6 / 30)  # 30.6 frames at 30 fps -> 31 frames
    assert len(frame_spectra(blocks(x, 5000), sr=SR, fps=30)) == 31
