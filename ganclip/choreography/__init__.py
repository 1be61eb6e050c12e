"""Features → a per-frame plan: latent z, class vector, truncation, image type.

The plan (:class:`~ganclip.plan.Plan`) is made for the generator's latent width ``dim_z``
and class count ``n_classes``, so any generator can draw it.

``classic`` is GAN_PI-2's mode (the smoothed spectrum as z, k-means clusters as the image
types); ``reactive`` the beat-driven one, with its ``camera`` and the ``drive`` that a
style-based generator's layers follow. Both build on ``signals`` (smoothing, loudness) and
``mixing`` (the image types frame by frame).

Names are re-exported here for reading and calling; a constant or a helper is patched on the
module that reads it (``ganclip.choreography.reactive.FRAME_CHUNK``, ``….camera.DROP_DB``).
"""

from ganclip.choreography.moves import drops
from ganclip.choreography.classic import bands_to_latent, classic_plan, cluster_frames
from ganclip.choreography.drive import style_drive
from ganclip.choreography.mixing import transition_mix, type_arrays
from ganclip.choreography.reactive import pulses, reactive_plan
from ganclip.choreography.signals import ema, normalise_bands
from ganclip.options import CLASSES_FROM, ReactiveSettings
from ganclip.plan import Plan

__all__ = ["CLASSES_FROM", "Plan", "ReactiveSettings", "classic_plan", "reactive_plan",
           "type_arrays", "transition_mix", "cluster_frames", "ema", "normalise_bands", "pulses",
           "bands_to_latent", "drops", "style_drive"]
