"""The camera for generators that draw a fixed picture (BigGAN): one warp of each frame.

A generator that cannot move its own camera (:attr:`~ganclip.generators.GeneratorSpec.camera`
False) draws at its native shape; :func:`warp` then zooms, turns and shifts the picture as
the plan's camera says, scales it to cover the output frame, and lifts it by the flash, all
in one bicubic resampling pass. Where the moved picture would leave the frame, it is
mirrored at its edges, so no border ever shows.

Coordinates are in frame heights, y up, as the ``cppn`` generator's: an output pixel at
``p`` shows the picture at ``R(angle) p / zoom + shift``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

FLASH_LIFT = 0.6  # a full flash brings colours this much of the way to white (cppn too)


def frame_points(width: int, height: int, *, aspect: float | None = None) -> torch.Tensor:
    """The pixel centres of a ``width`` × ``height`` grid in frame heights, y up: [P, 2]
    (x, y), rows from the top. ``aspect`` is the frame's width / height when the grid is a
    scaled copy of it whose rounding differs (default ``width / height``)."""
    aspect = width / height if aspect is None else aspect
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width * 2 - 1
    ys = 1 - (torch.arange(height, dtype=torch.float32) + 0.5) / height * 2
    yy, xx = torch.meshgrid(ys, xs * aspect, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)


def seen(points: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """Where each frame's camera looks for each of ``points`` [P, 2]: [B, P, 2].

    The camera looks at ``shift``, turned by ``angle`` and magnified by ``zoom``: a frame
    point ``p`` shows the scene at ``R(angle) p / zoom + shift``."""
    zoom, angle, shift = camera[:, 0], camera[:, 1], camera[:, 2:4]
    c, s = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    turn = torch.stack([torch.stack([c, s], 1), torch.stack([-s, c], 1)], 1)  # [B, 2, 2]
    return torch.baddbmm(shift.unsqueeze(1), points.expand(len(camera), -1, -1), turn)


def _grid(camera: torch.Tensor, out_w: int, out_h: int, source_aspect: float) -> torch.Tensor:
    """``grid_sample``'s grid [B, H, W, 2] in the source's normalised coordinates.

    The source (aspect ``source_aspect``) is scaled to cover the output: its half height,
    in output frame heights, is ``max(1, output aspect / source aspect)``."""
    half_h = max(1.0, out_w / out_h / source_aspect)
    scale = torch.tensor([1 / (half_h * source_aspect), -1 / half_h])  # y down in the grid
    return (seen(frame_points(out_w, out_h), camera) * scale).view(len(camera), out_h, out_w,
                                                                  2)


@torch.inference_mode()
def warp(frames: np.ndarray, camera: np.ndarray | None, size: tuple[int, int]) -> np.ndarray:
    """Frames moved by the camera and scaled to cover ``size``, in one pass.

    Parameters
    ----------
    frames : np.ndarray [shape=(B, h, w, 3)], uint8 RGB, any shape
    camera : np.ndarray [shape=(B, 5)] or None: zoom, angle (radians), shift x, shift y
        (frame heights), flash (0..1), as :meth:`~ganclip.plan.Plan.camera` gives; None is
        a still camera
    size : (width, height) of the output

    Returns
    -------
    frames : np.ndarray [shape=(B, height, width, 3)], uint8 RGB
    """
    out_w, out_h = size
    b, h, w, _ = frames.shape
    if camera is None:
        camera = np.tile(np.array([1, 0, 0, 0, 0], np.float32), (b, 1))
    cam = torch.as_tensor(np.asarray(camera, np.float32))
    out = np.empty((b, out_h, out_w, 3), np.uint8)
    for i in range(b):  # a frame at a time: a 4K grid and its float picture are 170 MB
        x = torch.as_tensor(frames[i:i + 1]).permute(0, 3, 1, 2).float()
        one = F.grid_sample(x, _grid(cam[i:i + 1], out_w, out_h, w / h), mode="bicubic",
                            padding_mode="reflection", align_corners=False)
        one = one + (255 - one).clamp(min=0) * (FLASH_LIFT * float(cam[i, 4]))
        out[i] = one.clamp_(0, 255).add_(0.5).to(torch.uint8)[0].permute(1, 2, 0).numpy()
    return out
