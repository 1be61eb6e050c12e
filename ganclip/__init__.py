"""ganclip: turn a song into a generated music video.

>>> import ganclip
>>> result = ganclip.render("song.mp3", output="song.mp4", fps=30, size=256)
"""

from ganclip.choreography import Plan
from ganclip.errors import GanclipError
from ganclip.generators import load_generator
from ganclip.render import RenderResult, analyze, render

__version__ = "0.1.0"
__all__ = ["GanclipError", "Plan", "RenderResult", "analyze", "load_generator", "render"]
