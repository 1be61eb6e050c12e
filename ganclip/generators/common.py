"""What the generator families share: pixels out, and the precision ``auto`` picks.

The device and precision checks live in the registry (:func:`ganclip.generators.check_device`,
:func:`~ganclip.generators.check_precision`), the safe reading of checkpoints with each
format (``torch.load(weights_only=True)``, safetensors, :mod:`…stylegan.snapshot`).
"""

from __future__ import annotations

import logging
import math
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

MIN_PSNR_DB = 30.0  # a reduced precision "auto" may pick must draw this close to fp32


def to_uint8(images) -> np.ndarray:
    """``[B, 3, H, W]`` in [-1, 1] (a torch tensor) → ``uint8 [B, H, W, 3]``:
    ``(x + 1) · 127.5``, rounded."""
    import torch

    x = images.float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images, dB (inf when equal)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def auto_precision(draw: Callable[[str], np.ndarray], device, *, model: str) -> str:
    """What ``--precision auto`` means for ``model`` on ``device``: fp32 on CPUs (they
    emulate fp16, and bf16 without AVX512-BF16/AMX); on CUDA fp16 when ``draw("fp16")``
    (uint8 frames of a fixed probe batch) is within :data:`MIN_PSNR_DB` of ``draw("fp32")``.
    """
    if str(device).split(":")[0] != "cuda":
        return "fp32"
    value = psnr(draw("fp32"), draw("fp16"))
    if value >= MIN_PSNR_DB:
        log.info("%s: precision auto: fp16 (%.1f dB against fp32)", model, value)
        return "fp16"
    log.info("%s: precision auto: fp16 is %.1f dB from fp32, below %.0f dB; using fp32",
             model, value, MIN_PSNR_DB)
    return "fp32"
