"""Numbers about the sound: nothing about pictures.

``spectra`` is the classic analysis (one mel spectrum per video frame); ``song`` the reactive
one (rows every 23 ms, streamed), which ``beats`` (with how steady the beat is) and
``sections`` finish.
"""

from ganclip.features.beats import STEADY_CONFIDENCE, tempo_confidence, track_beats
from ganclip.features.sections import segment
from ganclip.features.settings import FeatureSettings
from ganclip.features.song import (SongAnalyzer, SongFeatures, derive, hit_level,
                                   song_features)
from ganclip.features.spectra import (BandSettings, FrameSpectra, fft_size, frame_edges,
                                      frame_spectra, to_db)

__all__ = ["STEADY_CONFIDENCE", "BandSettings", "FeatureSettings", "FrameSpectra",
           "SongAnalyzer", "SongFeatures", "derive", "fft_size", "frame_edges",
           "frame_spectra", "hit_level", "segment", "song_features", "tempo_confidence",
           "to_db", "track_beats"]
