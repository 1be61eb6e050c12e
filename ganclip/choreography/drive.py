"""The style drives: what a style-based generator's layers follow (:data:`~ganclip.plan.DRIVE`),
from the song in the reactive mode, a fixed row in classic mode."""

from __future__ import annotations

import numpy as np

from ganclip.choreography.signals import _envelope, _level, _loudness, _smooth
from ganclip.options import ReactiveSettings

# classic mode's style drive, for a W-space model: the spectrum's path moves the coarse and
# middle layers as far as a reactive plan's full drive does; the fine ones keep the look
CLASSIC_DRIVE = np.array([1.0, 1.0, 0.0, 0.0, *([1 / 12] * 12)], np.float32)

BASS_HZ = 150.0  # mel bands centred below this are the bass
HIGH_HZ = 4000.0  # and above this the highs
DRIVE_SECONDS = 0.04  # smoothing of the band levels: fast enough for a kick
CHROMA_SECONDS = 0.5  # the harmony changes with the chords, not with every note


def style_drive(features, hits, at: np.ndarray, settings: ReactiveSettings) -> np.ndarray:
    """What a style-based generator's layers follow, at the times ``at``.

    Columns (:data:`~ganclip.plan.DRIVE`), as Brouwer's audio-reactive StyleGAN
    interpolations do it:

    - **coarse** (the layout): the hits' envelopes (``hits`` is
      :func:`~ganclip.choreography.reactive.pulses`') and the bass (mel bands below
      :data:`BASS_HZ`), times ``settings.structure``;
    - **middle**: the harmonic loudness that paces the drift, times ``settings.motion``;
    - **fine** (texture, colour): half always, half the highs (above :data:`HIGH_HZ`),
      times ``settings.texture``; they are steered by
    - **chroma**: the 12 pitch classes, smoothed over :data:`CHROMA_SECONDS`, summing to 1;
    - **noise**: the onset strength, times ``settings.noise``.

    Returns
    -------
    drive : np.ndarray [shape=(len(at), len(DRIVE))], float32 >= 0
    """
    import librosa

    from ganclip.features import FeatureSettings

    rate = features.sr / features.hop
    centres = librosa.mel_frequencies(features.mel.shape[0] + 2, fmin=FeatureSettings().fmin,
                                      fmax=features.sr / 2)[1:-1]

    def band(mask):
        level = _level(features.mel[mask].sum(axis=0), sensitivity=settings.sensitivity)
        return np.interp(at, features.times, _smooth(level, seconds=DRIVE_SECONDS, rate=rate))

    times, strength, decay = hits
    pulse = np.zeros(len(at))
    for k in range(len(times)):
        first, last = np.searchsorted(at, [times[k], times[k] + 8 * decay[k]])
        pulse[first:last] += _envelope(at[first:last] - times[k], decay[k]) * strength[k]
    onset = features.onset / max(float(np.percentile(features.onset, 95)), 1e-6) \
        if len(features.onset) else features.onset
    onset = np.interp(at, features.times, _smooth(np.clip(onset, 0, 1), seconds=DRIVE_SECONDS,
                                                  rate=rate))
    harmonic = np.interp(at, features.times, _loudness(features, settings,
                                                       seconds=settings.smoothing, harmonic=True))
    chroma = _smooth(features.chroma, seconds=CHROMA_SECONDS, rate=rate) ** 2
    chroma = np.stack([np.interp(at, features.times, c) for c in chroma], axis=1)
    chroma /= np.maximum(chroma.sum(axis=1, keepdims=True), 1e-9)
    coarse = np.clip(0.6 * np.minimum(pulse, 1.0) + 0.4 * band(centres < BASS_HZ), 0, 1)
    fine = 0.5 + 0.5 * band(centres > HIGH_HZ)
    return np.column_stack([coarse * settings.structure, harmonic * settings.motion,
                            fine * settings.texture, np.clip(onset, 0, 1) * settings.noise,
                            chroma]).astype(np.float32)
