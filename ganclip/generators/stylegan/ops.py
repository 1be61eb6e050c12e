"""Resampling shared by the StyleGAN families: FIR up/down-sampling as torch convolutions.

:func:`upfirdn2d` is the one primitive StyleGAN2's resampling convolutions and StyleGAN3's
filtered nonlinearity are made of: upsample by inserting zeros, pad (or crop), convolve
with a FIR filter, keep every ``down``-th pixel. Here it is a depthwise convolution (two
1-D passes for a separable filter) with the keeping done by the convolution's stride, so
no output that is dropped is ever computed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, (int, float)) else \
        (int(value[0]), int(value[1]))


def _padding(padding) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1) from one int, (x, y) or four ints."""
    if isinstance(padding, int):
        return (padding,) * 4
    padding = tuple(int(p) for p in padding)
    return padding * 2 if len(padding) == 1 else \
        (padding[0], padding[0], padding[1], padding[1]) if len(padding) == 2 else padding


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, *, up=1, down=1, padding=0,
              flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """Upsample, pad, FIR-filter and downsample a batch of images.

    Parameters
    ----------
    x : torch.Tensor [shape=(N, C, H, W)]
    f : torch.Tensor [shape=(fh, fw)] or [shape=(fw,)] (separable: the same 1-D filter on
        both axes), or None for no filtering
    up, down : int or (x, y), the factors
    padding : int, (x, y) or (x0, x1, y0, y1), pixels added (negative: cropped) on each side
        after upsampling
    flip_filter : bool, correlate instead of convolve
    gain : float, overall gain; the filter is scaled by ``gain ** (f.ndim / 2)`` so a
        separable filter gains ``gain`` over both passes

    Returns
    -------
    torch.Tensor [shape=(N, C, (H·up_y + y0 + y1 - fh) // down_y + 1, …)]
    """
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    px0, px1, py0, py1 = _padding(padding)
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    n, c, h, w = x.shape
    if upx > 1 or upy > 1:  # zeros between the pixels
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(n, c, h * upy, w * upx)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0):x.shape[2] - max(-py1, 0), max(-px0, 0):x.shape[3] - max(-px1, 0)]
    f = (f * (gain ** (f.ndim / 2))).to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        weight = f[None, None].repeat(c, 1, 1, 1)
        return F.conv2d(x, weight, groups=c, stride=(downy, downx))
    weight = f[None, None].repeat(c, 1, 1)
    x = F.conv2d(x, weight.unsqueeze(2), groups=c, stride=(1, downx))
    return F.conv2d(x, weight.unsqueeze(3), groups=c, stride=(downy, 1))


def setup_filter(f, *, normalize: bool = True, separable: bool | None = None,
                 gain: float = 1.0, device=None) -> torch.Tensor:
    """A FIR filter as a float32 tensor: 1-D taps stay 1-D (separable) unless
    ``separable`` is False, in which case they become their outer product; normalised to
    sum to ``gain ** (ndim / 2)``."""
    f = torch.as_tensor([1.0] if f is None else f, dtype=torch.float32, device=device)
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = f.ger(f)
    if normalize:
        f = f / f.sum()
    return f * (gain ** (f.ndim / 2))
