"""The Ray executor: a render's segments drawn by actors on a Ray cluster.

A render is already cut into 4-second segments (:mod:`ganclip.work`), each a complete
H.264 file; with ``render(..., ray=ADDRESS)`` (``--ray``) the driver analyses the song,
puts the plan into Ray's object store once, and a :class:`Pool` of actors, one per GPU or
a few CPUs each, each with the generator loaded once, draws and encodes the segments and
hands them back as bytes, which the driver writes into ``<output>.parts/`` as a local
render would. So a render started with Ray resumes without it and the other way round,
and the video is frame for frame a local render's.

Reading order: :mod:`~ganclip.cluster.connect` (starting or joining Ray),
:mod:`~ganclip.cluster.worker` (the actor, and how weights travel),
:mod:`~ganclip.cluster.pool` (the pool and the driver's loop, with its faults).

Ray is imported only here, and only when used: it is the optional extra ``ganclip[ray]``.
"""

from ganclip.cluster.connect import CONNECT_TIMEOUT, ClusterError, check
from ganclip.cluster.pool import Pool, draw

__all__ = ["CONNECT_TIMEOUT", "ClusterError", "Pool", "check", "draw"]
