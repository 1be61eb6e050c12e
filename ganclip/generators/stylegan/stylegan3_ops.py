"""StyleGAN3's filters and the two operations made of them: the low-pass FIR filters each
layer designs (separable Kaiser filters from ``scipy.signal.firwin``; R's radially
symmetric windowed jinc), the *filtered* leaky ReLU (upsample, nonlinearity at the higher
rate, low-pass and downsample, NVIDIA's ``filtered_lrelu``) and the modulated convolution.

The filters run through :func:`~.ops.upfirdn2d`, on channels-last features on CPUs (one
2-D depthwise convolution each, a strided transposed one to upsample).
"""

from __future__ import annotations

import numpy as np
import scipy.signal
import scipy.special
import torch
import torch.nn.functional as F

from ganclip.generators.stylegan.layers import demodulation, may_overwrite
from ganclip.generators.stylegan.ops import CHANNELS_LAST, upfirdn2d

# the upsampled features of one filtered nonlinearity are drawn this many bytes at a time
# (a 1024² R network's largest layer upsamples to 2.7 GB per sample in float32)
TEMP_BYTES = 256 * 2 ** 20


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


def filtered_lrelu(x: torch.Tensor, fu: torch.Tensor | None, fd: torch.Tensor | None,
                   bias: torch.Tensor | None, *, up: int, down: int, padding, gain: float,
                   slope: float, clamp: float | None) -> torch.Tensor:
    """Bias, upsample by ``up`` with ``fu``, ``gain · lrelu(·, slope)``, clamp, low-pass with
    ``fd`` and keep every ``down``-th sample (NVIDIA's ``filtered_lrelu``).

    Parameters
    ----------
    x : torch.Tensor [shape=(B, C, H, W)]
    fu, fd : torch.Tensor or None, filters from :func:`design_lowpass_filter`
    bias : torch.Tensor [shape=(C,)], in ``x``'s dtype, or None (added already)
    up, down : int
    padding : (x0, x1, y0, y1), of the upsampled image
    gain, slope : float, the nonlinearity's gain and negative slope (1, 1: linear)
    clamp : float or None

    Returns
    -------
    torch.Tensor [shape=(B, C, (H·up + y0 + y1 - (ku - 1) - (kd - 1) + down - 1) // down, …)]
    for filters of ``ku`` and ``kd`` taps, in ``x``'s dtype
    """
    if bias is not None:
        x = x + bias.reshape(1, -1, 1, 1)
    inplace = may_overwrite(x)  # gradients need the copies

    def one(part):
        # up² makes up for the inserted zeros; lrelu(g·x) = g·lrelu(x) for g > 0, so the
        # nonlinearity's gain rides on the filter too
        y = upfirdn2d(part, fu, up=up, padding=padding, gain=up * up * gain)
        if slope != 1:
            y = F.leaky_relu_(y, slope) if inplace else F.leaky_relu(y, slope)
        if clamp is not None:
            y = y.clamp_(-clamp, clamp) if inplace else y.clamp(-clamp, clamp)
        return upfirdn2d(y, fd, down=down)

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
                     demodulate: bool, input_gain: torch.Tensor, padding: int,
                     bias: torch.Tensor | None = None, fused: bool | None = None) -> torch.Tensor:
    """A convolution whose weight is scaled per sample and input channel by ``styles`` and,
    with ``demodulate``, renormalised per output channel; then multiplied by ``input_gain``
    and offset by ``bias``.

    Parameters
    ----------
    x : torch.Tensor [shape=(B, I, H, W)]
    weight : torch.Tensor [shape=(O, I, k, k)]
    styles : torch.Tensor [shape=(B, I)], float32
    input_gain : torch.Tensor [shape=()], float32
    bias : torch.Tensor [shape=(O,)] or None, in ``x``'s dtype, added last
    fused : bool or None, True: each sample's own modulated weight (NVIDIA's way, one
        convolution per sample, bias included); False: one shared convolution between
        scaling the input by the styles and the output by the demodulation (the same
        numbers, to rounding); None: whichever scales fewer numbers (on CPUs every feature
        map allocated and scaled costs more than modulating a weight)

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
    scale = styles * input_gain  # [B, I], float32
    batch = x.shape[0]
    if fused is None:
        fused = weight.numel() < x[0].numel()
    if fused:
        # a convolution on channels-last features takes its weight channels-last too
        layout = CHANNELS_LAST if not x.is_contiguous() and \
            x.is_contiguous(memory_format=CHANNELS_LAST) else torch.contiguous_format
        out = []
        for i in range(batch):
            w = weight * scale[i].reshape(1, -1, 1, 1)
            if dcoefs is not None:
                w = w * dcoefs[i].reshape(-1, 1, 1, 1)
            w = w.to(x.dtype).contiguous(memory_format=layout)
            out.append(F.conv2d(x[i:i + 1], w, bias, padding=padding))
        return out[0] if batch == 1 else torch.cat(out)
    x = F.conv2d(x * scale.to(x.dtype).reshape(*scale.shape, 1, 1), weight.to(x.dtype),
                 padding=padding)
    inplace = may_overwrite(x)  # the convolution's own output, scaled where it lies
    if dcoefs is not None:
        dcoefs = dcoefs.to(x.dtype).reshape(*dcoefs.shape, 1, 1)
        x = x.mul_(dcoefs) if inplace else x * dcoefs
    if bias is not None:
        bias = bias.reshape(1, -1, 1, 1)
        x = x.add_(bias) if inplace else x + bias
    return x
