"""StyleGAN2's modulated convolution: a weight scaled per sample by a style and
renormalised ("demodulated"), in NVIDIA's two equivalent ways (per-sample weights in one
grouped convolution, or the styles on the features around one shared convolution), with
the upsampling of :func:`~.ops.conv2d_resample`.
"""

from __future__ import annotations

import math

import torch

from ganclip.generators.stylegan.layers import demodulation, may_overwrite
from ganclip.generators.stylegan.ops import conv2d_resample, derive_now


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *,
                     noise: torch.Tensor | None = None, up: int = 1, padding: int = 0,
                     resample_filter: torch.Tensor | None = None, demodulate: bool = True,
                     flip_weight: bool = True, fused: bool | None = True,
                     derive=None) -> torch.Tensor:
    """A convolution whose weight is scaled per sample and input channel by ``styles``
    and, with ``demodulate``, renormalised to unit norm per output channel.

    Parameters
    ----------
    x : torch.Tensor [shape=(B, I, H, W)]
    weight : torch.Tensor [shape=(O, I, kh, kw)]
    styles : torch.Tensor [shape=(B, I)], float32
    noise : torch.Tensor or None, broadcastable to the output, added after demodulation
    up, padding, resample_filter, flip_weight : see :func:`~.ops.conv2d_resample`
    demodulate : bool
    fused : bool or None, True: one grouped convolution with per-sample weights; False: one
        shared convolution between scaling the input by the styles and the output by the
        demodulation (the same numbers, faster where grouped convolutions are slow); None:
        whichever scales fewer numbers (fused for one sample whose features outnumber the
        weight: the octaves near the picture's size)
    derive : callable or None, ``derive(name, weight, make) -> make(weight)``, which may
        give back what it made for an earlier call (a layer's
        :meth:`~.layers.DerivedTensors.derived`): the weight's squared norms, and the
        weight as the unfused convolution takes it

    Returns
    -------
    torch.Tensor [shape=(B, O, H·up + 2·padding - kh + 1, …)], in ``x``'s dtype
    """
    batch = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    if demodulate and x.dtype == torch.float16:
        # scale both to at most 1 so fp16 activations cannot overflow; the demodulation
        # undoes the scale
        weight = weight.to(torch.float32)
        weight = weight * (1 / math.sqrt(in_channels * kh * kw)
                           / weight.abs().amax(dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.abs().amax(dim=1, keepdim=True)
        derive = None  # a new weight on every call: nothing to keep
    derive = derive or derive_now
    dcoefs = None
    if demodulate:
        energy = derive("energy", weight, lambda w: w.to(torch.float32).square().sum([2, 3]))
        dcoefs = demodulation(styles, energy)
    if fused is None:
        fused = batch == 1 and weight.numel() < x[0].numel()

    if not fused:
        x = x * styles.to(x.dtype).reshape(batch, -1, 1, 1)
        x = conv2d_resample(x, weight, resample_filter, up=up, padding=padding,
                            flip_weight=flip_weight, derive=derive)
        noise = None if noise is None else noise.to(x.dtype)
        if dcoefs is None:
            return x if noise is None else x + noise
        dcoefs = dcoefs.to(x.dtype).reshape(batch, -1, 1, 1)
        if not may_overwrite(x):
            return x * dcoefs if noise is None else torch.addcmul(noise, x, dcoefs)
        # the convolution's own output: scaled in place, no second feature map (on CPUs
        # allocating one costs more than the arithmetic)
        return x.mul_(dcoefs) if noise is None else torch.addcmul(noise, x, dcoefs, out=x)

    w = weight.to(torch.float32).unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)
    if dcoefs is not None:
        w = w * dcoefs.reshape(batch, -1, 1, 1, 1)
    if batch > 1:  # the batch becomes groups of channels (one sample keeps its layout)
        x = x.reshape(1, -1, *x.shape[2:])
    x = conv2d_resample(x, w.reshape(-1, in_channels, kh, kw).to(x.dtype), resample_filter,
                        up=up, padding=padding, groups=batch, flip_weight=flip_weight)
    if batch > 1:
        x = x.reshape(batch, -1, *x.shape[2:])
    if noise is None:
        return x
    return x.add_(noise.to(x.dtype)) if may_overwrite(x) else x + noise.to(x.dtype)
