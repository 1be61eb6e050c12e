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


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) of a FIR filter as :func:`setup_filter` makes it; (1, 1) for None."""
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    return f.shape[1], f.shape[0]


def upsample2d(x: torch.Tensor, f: torch.Tensor | None, *, up=2, padding=0,
               flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """Upsample a batch of images by ``up`` with the FIR filter ``f``, keeping the picture
    centred: ``[N, C, H, W] -> [N, C, H·up, W·up]`` (plus ``padding``).

    The filter's gain is multiplied by ``up_x · up_y`` so that a flat image stays flat
    after zeros are inserted between its pixels.
    """
    upx, upy = _pair(up)
    px0, px1, py0, py1 = _padding(padding)
    fw, fh = filter_size(f)
    centred = (px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2,
               py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2)
    return upfirdn2d(x, f, up=up, padding=centred, flip_filter=flip_filter,
                     gain=gain * upx * upy)


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, *,
                    up: int = 1, padding=0, groups: int = 1, flip_weight: bool = True,
                    flip_filter: bool = False) -> torch.Tensor:
    """2-D convolution, optionally upsampling by ``up`` with the FIR filter ``f`` first.

    The same result as zero-insertion, FIR filtering and convolution done one after the
    other (NVIDIA's ``conv2d_resample`` without downsampling), computed the cheap way: an
    upsampling convolution is a strided transposed convolution followed by the FIR filter
    at the output size, and a 1x1 one is a convolution followed by the upsampling filter.

    Parameters
    ----------
    x : torch.Tensor [shape=(N, C_in, H, W)]
    w : torch.Tensor [shape=(C_out, C_in / groups, kh, kw)], in ``x``'s dtype
    f : torch.Tensor or None, the filter from :func:`setup_filter` (needed when ``up > 1``)
    up : int, upsampling factor
    padding : int, (x, y) or (x0, x1, y0, y1), relative to the upsampled image
    groups : int, as in :func:`torch.nn.functional.conv2d`
    flip_weight : bool, True correlates with ``w`` (as ``conv2d`` does), False convolves
    flip_filter : bool, see :func:`upfirdn2d`

    Returns
    -------
    torch.Tensor [shape=(N, C_out, H·up + x0 + x1 - kh + 1, …)]
    """
    px0, px1, py0, py1 = _padding(padding)
    c_out, c_in_group, kh, kw = w.shape
    if up == 1:
        if not flip_weight:
            w = w.flip([2, 3])
        if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
            return F.conv2d(x, w, padding=(py0, px0), groups=groups)
        return F.conv2d(upfirdn2d(x, None, padding=(px0, px1, py0, py1)), w, groups=groups)

    # widen the padding so the upsampling filter stays centred
    fw, fh = filter_size(f)
    px0 += (fw + up - 1) // 2
    px1 += (fw - up) // 2
    py0 += (fh + up - 1) // 2
    py1 += (fh - up) // 2
    gain = up ** 2  # zeros between pixels thin the signal by up²
    if kh == 1 and kw == 1:  # a 1x1 kernel commutes with the upsampling: convolve first
        x = F.conv2d(x, w, groups=groups)
        return upfirdn2d(x, f, up=up, padding=(px0, px1, py0, py1), gain=gain,
                         flip_filter=flip_filter)

    # conv_transpose2d wants [C_in, C_out / groups, kh, kw], grouped the same way
    w = w.reshape(groups, c_out // groups, c_in_group, kh, kw).transpose(1, 2)
    w = w.reshape(groups * c_in_group, c_out // groups, kh, kw)
    if flip_weight:  # a transposed convolution convolves; correlating needs the flip
        w = w.flip([2, 3])
    # the transposed convolution already grows the image by (k - 1) and (k - up)
    px0 -= kw - 1
    px1 -= kw - up
    py0 -= kh - 1
    py1 -= kh - up
    crop_x = max(min(-px0, -px1), 0)  # what the transposed convolution can crop itself
    crop_y = max(min(-py0, -py1), 0)
    x = F.conv_transpose2d(x, w, stride=up, padding=(crop_y, crop_x), groups=groups)
    return _filter(x, f, padding=(px0 + crop_x, px1 + crop_x, py0 + crop_y, py1 + crop_y),
                   gain=gain, flip_filter=flip_filter)


def _filter(x, f, *, padding, gain, flip_filter):
    """``upfirdn2d`` without resampling; a 2-D filter with even padding is one depthwise
    convolution that pads for itself (no padded copy of a large feature map)."""
    px0, px1, py0, py1 = padding
    if f is None or f.ndim != 2 or px0 != px1 or py0 != py1 or px0 < 0 or py0 < 0:
        return upfirdn2d(x, f, padding=padding, gain=gain, flip_filter=flip_filter)
    f = (f * gain).to(x.dtype)
    if not flip_filter:
        f = f.flip([0, 1])
    channels = x.shape[1]
    return F.conv2d(x, f[None, None].repeat(channels, 1, 1, 1), padding=(py0, px0),
                    groups=channels)
