"""StyleGAN3's filters and the two operations made of them: the low-pass FIR filters each
layer designs (separable Kaiser filters from ``scipy.signal.firwin``; R's radially
symmetric windowed jinc), the *filtered* leaky ReLU (upsample, nonlinearity at the higher
rate, low-pass and downsample, NVIDIA's ``filtered_lrelu``) and the modulated convolution.

Every filter here is applied per channel as one 2-D depthwise convolution (separable taps
as their outer product) on channels-last features: on CPUs PyTorch's depthwise filters
are 3-6x faster in that layout than two 1-D passes in NCHW, and zero-insertion upsampling
is a strided transposed convolution, which never multiplies by the inserted zeros.
"""

from __future__ import annotations

import numpy as np
import scipy.signal
import scipy.special
import torch
import torch.nn.functional as F

from ganclip.generators.stylegan.layers import demodulation, may_overwrite

# the upsampled features of one filtered nonlinearity are drawn this many bytes at a time
# (a 1024² R network's largest layer upsamples to 2.7 GB per sample in float32)
TEMP_BYTES = 256 * 2 ** 20
CHANNELS_LAST = torch.channels_last


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float, *,
                          radial: bool = False) -> torch.Tensor | None:
    """One layer's low-pass FIR filter, as NVIDIA designs it.

    Parameters
    ----------
    numtaps : int, taps (1: no filter)
    cutoff, width, fs : float, cutoff, transition band width and sampling rate, in cycles
        per image width
    radial : bool, a radially symmetric windowed jinc instead of a separable Kaiser filter

    Returns
    -------
    torch.Tensor [shape=(numtaps,)] (separable) or [shape=(numtaps, numtaps)] (radial),
    float32, summing to 1; None for one tap
    """
    if numtaps == 1:
        return None
    if not radial:
        taps = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
        return torch.as_tensor(taps, dtype=torch.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    taps = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)  # the disc's spectrum
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    taps *= np.outer(window, window)
    return torch.as_tensor(taps / taps.sum(), dtype=torch.float32)


def _kernel(f: torch.Tensor, channels: int, dtype, *, gain: float = 1.0) -> torch.Tensor:
    """A filter times ``gain`` as a depthwise convolution weight [channels, 1, k, k]
    (separable taps as their outer product: channels-last, one 2-D pass is faster than
    two 1-D ones)."""
    k2 = (torch.outer(f, f) if f.ndim == 1 else f) * gain
    return k2.to(dtype)[None, None].expand(channels, 1, *k2.shape).contiguous(
        memory_format=CHANNELS_LAST)


def _crop(x: torch.Tensor, x0: int, x1: int, y0: int, y1: int) -> torch.Tensor:
    """``x`` cropped by the positive and zero-padded by the negative amounts on each side."""
    h, w = x.shape[2:]
    x = x[:, :, max(y0, 0):h - max(y1, 0), max(x0, 0):w - max(x1, 0)]
    if min(x0, x1, y0, y1) < 0:
        x = F.pad(x, [max(-x0, 0), max(-x1, 0), max(-y0, 0), max(-y1, 0)])
    return x


def _upsample(x: torch.Tensor, f: torch.Tensor | None, *, up: int, padding, gain: float):
    """``upfirdn2d(x, f, up=up, padding=padding, gain=gain)`` (zeros inserted, padded,
    convolved with ``f``) as one strided transposed convolution, which never multiplies by
    the inserted zeros."""
    px0, px1, py0, py1 = padding
    if f is None:
        if up == 1:
            x = _crop(x, -px0, -px1, -py0, -py1)
            return x * gain if gain != 1 else x
        f = torch.ones([1, 1], device=x.device)  # zeros inserted, nothing filtered
    k = f.shape[-1]
    kernel = _kernel(f, x.shape[1], x.dtype, gain=gain)
    # the full convolution has k - 1 extra samples before and k - up after what
    # upfirdn2d keeps with no padding; the padding moves those edges
    lo_x, hi_x, lo_y, hi_y = k - 1 - px0, k - up - px1, k - 1 - py0, k - up - py1
    cx, cy = max(min(lo_x, hi_x), 0), max(min(lo_y, hi_y), 0)
    x = F.conv_transpose2d(x, kernel, stride=up, padding=(cy, cx), groups=x.shape[1])
    return _crop(x, lo_x - cx, hi_x - cx, lo_y - cy, hi_y - cy)


def _downsample(x: torch.Tensor, f: torch.Tensor | None, *, down: int) -> torch.Tensor:
    """``upfirdn2d(x, f, down=down)``: convolve with ``f`` (no padding) and keep every
    ``down``-th sample, in one strided convolution."""
    if f is None:
        return x[:, :, ::down, ::down]
    return F.conv2d(x, _kernel(f.flip(list(range(f.ndim))), x.shape[1], x.dtype),
                    stride=down, groups=x.shape[1])


def filtered_lrelu(x: torch.Tensor, fu: torch.Tensor | None, fd: torch.Tensor | None,
                   bias: torch.Tensor, *, up: int, down: int, padding, gain: float,
                   slope: float, clamp: float | None) -> torch.Tensor:
    """Bias, upsample by ``up`` with ``fu``, ``gain · lrelu(·, slope)``, clamp, low-pass with
    ``fd`` and keep every ``down``-th sample (NVIDIA's ``filtered_lrelu``).

    Parameters
    ----------
    x : torch.Tensor [shape=(B, C, H, W)]
    fu, fd : torch.Tensor or None, filters from :func:`design_lowpass_filter`
    bias : torch.Tensor [shape=(C,)], in ``x``'s dtype
    up, down : int
    padding : (x0, x1, y0, y1), of the upsampled image
    gain, slope : float, the nonlinearity's gain and negative slope (1, 1: linear)
    clamp : float or None

    Returns
    -------
    torch.Tensor [shape=(B, C, (H·up + y0 + y1 - (ku - 1) - (kd - 1) + down - 1) // down, …)]
    for filters of ``ku`` and ``kd`` taps, in ``x``'s dtype
    """
    x = x + bias.reshape(1, -1, 1, 1)
    inplace = may_overwrite(x)  # gradients need the copies

    def one(part):
        # up² makes up for the inserted zeros; lrelu(g·x) = g·lrelu(x) for g > 0, so the
        # nonlinearity's gain rides on the filter too
        y = _upsample(part, fu, up=up, padding=padding, gain=up * up * gain)
        if slope != 1:
            y = F.leaky_relu_(y, slope) if inplace else F.leaky_relu(y, slope)
        if clamp is not None:
            y = y.clamp_(-clamp, clamp) if inplace else y.clamp(-clamp, clamp)
        return _downsample(y, fd, down=down)

    # each channel is filtered alone, so a few samples, or channels, at a time bound the
    # memory the upsampled features take
    batch, channels = x.shape[:2]
    per_channel = x[0, 0].numel() * x.element_size() * up * up
    width = min(channels, max(1, TEMP_BYTES // per_channel))
    rows = max(1, TEMP_BYTES // (per_channel * channels)) if width == channels else 1
    out = []
    for i in range(0, batch, rows):
        parts = [one(x[i:i + rows, j:j + width]) for j in range(0, channels, width)]
        out.append(parts[0] if len(parts) == 1 else torch.cat(parts, dim=1))
    return out[0] if len(out) == 1 else torch.cat(out)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *,
                     demodulate: bool, input_gain: torch.Tensor, padding: int) -> torch.Tensor:
    """A convolution whose weight is scaled per sample and input channel by ``styles`` and,
    with ``demodulate``, renormalised per output channel; then multiplied by ``input_gain``.

    Computed as one shared convolution between scaling the input by the styles and the
    output by the demodulation: the same numbers as a grouped convolution with per-sample
    weights, and faster on CPUs.

    Parameters
    ----------
    x : torch.Tensor [shape=(B, I, H, W)]
    weight : torch.Tensor [shape=(O, I, k, k)]
    styles : torch.Tensor [shape=(B, I)], float32
    input_gain : torch.Tensor [shape=()], float32

    Returns
    -------
    torch.Tensor [shape=(B, O, H + 2·padding - k + 1, …)], in ``x``'s dtype
    """
    weight = weight.to(torch.float32)
    dcoefs = None
    if demodulate:
        # unit-scale both first, as NVIDIA does (the demodulation undoes it; fp16 needs it);
        # the styles per sample, where NVIDIA takes the whole batch's mean, so a picture
        # never depends on the batch it is drawn in (the same pictures, to rounding)
        weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean(1, keepdim=True).rsqrt()
        dcoefs = demodulation(styles, weight.square().sum([2, 3]))
    scale = (styles * input_gain).to(x.dtype)
    x = F.conv2d(x * scale.reshape(*scale.shape, 1, 1), weight.to(x.dtype), padding=padding)
    if dcoefs is not None:
        x = x * dcoefs.to(x.dtype).reshape(*dcoefs.shape, 1, 1)
    return x
