"""ganclip: turn a song into a generated music video.

>>> import ganclip
>>> result = ganclip.render("song.mp3", output="song.mp4", fps=30, size=256)
"""

from ganclip.errors import GanclipError
from ganclip.generators import load_generator
from ganclip.options import AnalysisOptions, GeneratorOptions, ReactiveSettings
from ganclip.plan import Plan
from ganclip.analysis import analyze
from ganclip.render import RenderResult, render

__version__ = "0.1.0"
__all__ = ["AnalysisOptions", "GanclipError", "GeneratorOptions", "Plan", "ReactiveSettings",
           "RenderResult", "analyze", "load_generator", "render"]
