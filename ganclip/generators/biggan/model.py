"""BigGAN-deep in the published layout: an ``nn.Module`` that reads like the paper, whose
``state_dict()`` keys are those of ``pytorch-pretrained-biggan`` 0.1.1."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganclip.generators.biggan.config import BigGANConfig


BASE_GRID = 4  # the first feature map's side, as trained
MAX_GRID_ASPECT = 4  # the widest first map an extended grid gets; wider frames crop


def grid_for(size) -> tuple[int, int]:
    """The first feature map's (rows, columns) that paints a frame of ``size`` (width,
    height): 4 on the short side, the aspect's share on the long one (4×7 for 16:9, 7×4
    for 9:16), at most :data:`MAX_GRID_ASPECT` times 4."""
    w, h = size
    long = min(round(BASE_GRID * max(w, h) / min(w, h)), BASE_GRID * MAX_GRID_ASPECT)
    return (BASE_GRID, long) if w >= h else (long, BASE_GRID)


def _mirrored(n: int, base: int = BASE_GRID) -> torch.Tensor:
    """Indices that extend ``base`` positions to ``n``, the trained ones in the middle and
    the rest mirrored outward (0 1 2 3 → 2 1 0 1 2 3 2 1 …), so every seam continues."""
    offset = (n - base) // 2
    period = 2 * (base - 1)
    k = (torch.arange(n) - offset) % period
    return torch.where(k < base, k, period - k)


def extend_grid(x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """The first feature map ``x`` [B, C, 4, 4] widened (or made taller) to ``grid`` by
    mirroring it outward: the network then paints a wider scene itself, as audio-reactive
    StyleGAN tools do by widening the network's input."""
    rows, cols = grid
    if (rows, cols) == tuple(x.shape[2:]):
        return x
    return x[:, :, _mirrored(rows)][:, :, :, _mirrored(cols)]


class SNLinear(nn.Module):
    """A linear layer whose weight is ``weight_orig / σ``, σ from stored ``weight_u``, ``_v``."""

    def __init__(self, n_in: int, n_out: int, *, bias: bool = True):
        super().__init__()
        self.weight_orig = nn.Parameter(torch.empty(n_out, n_in))
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None
        self.register_buffer("weight_u", torch.empty(n_out))
        self.register_buffer("weight_v", torch.empty(n_in))

    def weight(self) -> torch.Tensor:
        # torch's spectral_norm in eval mode: σ = uᵀ W v, no power iteration
        w = self.weight_orig
        sigma = torch.dot(self.weight_u, w.reshape(len(w), -1) @ self.weight_v)
        return w / sigma

    def forward(self, x):
        return F.linear(x, self.weight(), self.bias)


class SNConv2d(SNLinear):
    """A square convolution, spectral-normed like :class:`SNLinear` over ``[out, in·k·k]``."""

    def __init__(self, n_in: int, n_out: int, *, kernel: int = 1, bias: bool = True):
        super().__init__(n_in * kernel * kernel, n_out, bias=bias)
        self.weight_orig = nn.Parameter(torch.empty(n_out, n_in, kernel, kernel))
        self.padding = kernel // 2

    def forward(self, x):
        return F.conv2d(x, self.weight(), self.bias, padding=self.padding)


def truncation_weights(truncation, n_stats: int):
    """Which two rows of stored statistics each truncation reads, and their weights.

    Matches pytorch-pretrained-biggan 0.1.1 exactly (``BigGANBatchNorm.forward``), quirk
    included: with ``t / step = i + c`` (``step = 1/(n_stats-1)``, ``0 < c < 1``) it takes
    ``c·row[i] + (1-c)·row[i+1]``, the weights swapped relative to linear interpolation, so
    the statistics run backwards between grid points and jump by one row at each multiple
    of ``step``; at a grid point (``c == 0``) it takes ``row[i]``. The published weights were
    used this way, so we reproduce it rather than fix it. Computed in float64 like the
    reference's Python floats; a truncation within 1e-4 steps of a grid point is taken as on
    it, so that float32 0.4 (0.4000000059…) reads row 20 as the literal 0.4 does, not ≈ row 21.

    Parameters
    ----------
    truncation : np.ndarray [shape=(B,)], in (0, 1]
    n_stats : int, rows of stored statistics

    Returns
    -------
    lo, hi : np.ndarray [shape=(B,)], int64 row indices
    w_lo, w_hi : np.ndarray [shape=(B,)], float64 weights of those rows
    """
    t = np.asarray(truncation, np.float64).reshape(-1)
    position = t / (1.0 / (n_stats - 1))
    on_grid = np.abs(position - np.round(position)) < 1e-4
    coef, start = np.modf(np.where(on_grid, np.round(position), position))
    lo = start.astype(np.int64)
    on_grid = coef == 0.0
    return (lo, np.minimum(lo + 1, n_stats - 1),
            np.where(on_grid, 1.0, coef), np.where(on_grid, 0.0, 1.0 - coef))


def _stats_at(rows: torch.Tensor, picks) -> torch.Tensor:
    """Per-sample statistics ``[B, C]`` from stored ``rows [n_stats, C]`` and ``picks``."""
    lo, hi, w_lo, w_hi = (torch.as_tensor(p, device=rows.device) for p in picks)
    return (rows[lo] * w_lo.to(rows.dtype)[:, None] + rows[hi] * w_hi.to(rows.dtype)[:, None])


class ConditionalBatchNorm(nn.Module):
    """Batch norm with stored per-truncation statistics and a class-conditional gain and bias:
    ``(x - mean_t) / sqrt(var_t + eps) · (1 + scale(cond)) + offset(cond)``."""

    def __init__(self, channels: int, cond_dim: int, *, n_stats: int, eps: float):
        super().__init__()
        self.eps = eps
        self.register_buffer("running_means", torch.zeros(n_stats, channels))
        self.register_buffer("running_vars", torch.ones(n_stats, channels))
        self.scale = SNLinear(cond_dim, channels, bias=False)
        self.offset = SNLinear(cond_dim, channels, bias=False)

    def forward(self, x, cond, picks):
        mean = _stats_at(self.running_means, picks)[:, :, None, None]
        var = _stats_at(self.running_vars, picks)[:, :, None, None]
        gain = 1 + self.scale(cond)[:, :, None, None]
        return (x - mean) / torch.sqrt(var + self.eps) * gain + self.offset(cond)[:, :, None, None]


class BatchNorm(nn.Module):
    """The last batch norm: stored per-truncation statistics, a learnt gain and bias."""

    def __init__(self, channels: int, *, n_stats: int, eps: float):
        super().__init__()
        self.eps = eps
        self.register_buffer("running_means", torch.zeros(n_stats, channels))
        self.register_buffer("running_vars", torch.ones(n_stats, channels))
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x, picks):
        mean = _stats_at(self.running_means, picks)[:, :, None, None]
        var = _stats_at(self.running_vars, picks)[:, :, None, None]
        return ((x - mean) / torch.sqrt(var + self.eps) * self.weight[:, None, None]
                + self.bias[:, None, None])


class GenBlock(nn.Module):
    """Bottleneck residual block: 1×1 down to a quarter, two 3×3, 1×1 up; each conv after a
    conditional BN and ReLU. Upsampling (nearest, ×2) happens before the first 3×3 conv; the
    skip path keeps the first ``out`` channels and is upsampled alike."""

    def __init__(self, n_in: int, n_out: int, cond_dim: int, *, upsample: bool,
                 n_stats: int, eps: float):
        super().__init__()
        self.upsample = upsample
        mid = n_in // 4
        norm = dict(n_stats=n_stats, eps=eps)
        self.bn_0 = ConditionalBatchNorm(n_in, cond_dim, **norm)
        self.conv_0 = SNConv2d(n_in, mid)
        self.bn_1 = ConditionalBatchNorm(mid, cond_dim, **norm)
        self.conv_1 = SNConv2d(mid, mid, kernel=3)
        self.bn_2 = ConditionalBatchNorm(mid, cond_dim, **norm)
        self.conv_2 = SNConv2d(mid, mid, kernel=3)
        self.bn_3 = ConditionalBatchNorm(mid, cond_dim, **norm)
        self.conv_3 = SNConv2d(mid, n_out)
        self.n_out = n_out

    def forward(self, x, cond, picks):
        h = self.conv_0(F.relu(self.bn_0(x, cond, picks)))
        h = F.relu(self.bn_1(h, cond, picks))
        if self.upsample:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.conv_1(h)
        h = self.conv_2(F.relu(self.bn_2(h, cond, picks)))
        h = self.conv_3(F.relu(self.bn_3(h, cond, picks)))
        skip = x[:, :self.n_out]
        if self.upsample:
            skip = F.interpolate(skip, scale_factor=2, mode="nearest")
        return h + skip


class SelfAttention(nn.Module):
    """SAGAN self-attention: queries at every pixel, keys and values max-pooled ×2, added
    back scaled by a learnt ``gamma``."""

    def __init__(self, channels: int):
        super().__init__()
        self.snconv1x1_theta = SNConv2d(channels, channels // 8, bias=False)
        self.snconv1x1_phi = SNConv2d(channels, channels // 8, bias=False)
        self.snconv1x1_g = SNConv2d(channels, channels // 2, bias=False)
        self.snconv1x1_o_conv = SNConv2d(channels // 2, channels, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, c, h, w = x.shape
        theta = self.snconv1x1_theta(x).reshape(b, c // 8, h * w)
        phi = F.max_pool2d(self.snconv1x1_phi(x), 2).reshape(b, c // 8, h * w // 4)
        g = F.max_pool2d(self.snconv1x1_g(x), 2).reshape(b, c // 2, h * w // 4)
        attention = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # [B, hw, hw/4]
        out = (g @ attention.transpose(1, 2)).reshape(b, c // 2, h, w)
        return x + self.gamma * self.snconv1x1_o_conv(out)


class Generator(nn.Module):
    def __init__(self, config: BigGANConfig):
        super().__init__()
        self.config = config
        ch = config.channel_width
        cond_dim = 2 * config.z_dim  # noise and class embedding, concatenated
        self.gen_z = SNLinear(cond_dim, 4 * 4 * 16 * ch)
        layers = []
        for i, (upsample, n_in, n_out) in enumerate(config.layers):
            if i == config.attention_layer_position:
                layers.append(SelfAttention(n_in * ch))
            layers.append(GenBlock(n_in * ch, n_out * ch, cond_dim, upsample=upsample,
                                   n_stats=config.n_stats, eps=config.eps))
        self.layers = nn.ModuleList(layers)
        self.bn = BatchNorm(ch, n_stats=config.n_stats, eps=config.eps)
        # The published conv_to_rgb has channel_width outputs; only the first 3 are used.
        self.conv_to_rgb = SNConv2d(ch, ch, kernel=3)

    def forward(self, cond, picks, grid=(BASE_GRID, BASE_GRID)):
        # gen_z's outputs are in TensorFlow's [4, 4, C] order
        x = self.gen_z(cond).reshape(-1, 4, 4, 16 * self.config.channel_width)
        x = extend_grid(x.permute(0, 3, 1, 2), grid).contiguous()
        for layer in self.layers:
            x = layer(x, cond, picks) if isinstance(layer, GenBlock) else layer(x)
        x = self.conv_to_rgb(F.relu(self.bn(x, picks)))
        return torch.tanh(x[:, :3])


class BigGAN(nn.Module):
    """BigGAN-deep generator in the layout of pytorch-pretrained-biggan's ``BigGAN``."""

    def __init__(self, config: BigGANConfig):
        super().__init__()
        self.config = config
        self.embeddings = nn.Linear(config.num_classes, config.z_dim, bias=False)
        self.generator = Generator(config)

    def forward(self, noise, class_vector, truncation, grid=(BASE_GRID, BASE_GRID)):
        """Images from noise, class vectors and truncations, as the reference computes them
        (on the trained 4×4 grid; another ``grid`` (rows, columns) paints a wider or taller
        picture, :func:`extend_grid`).

        Parameters
        ----------
        noise : torch.Tensor [shape=(B, z_dim)], the reference's noise: truncation × unit latent
        class_vector : torch.Tensor [shape=(B, num_classes)]
        truncation : float or array [shape=(B,)], in (0, 1]; one per sample allowed

        Returns
        -------
        images : torch.Tensor [shape=(B, 3, output_dim·rows/4, output_dim·columns/4)],
            in [-1, 1]
        """
        t = np.broadcast_to(np.asarray(truncation, np.float64), (len(noise),))
        picks = truncation_weights(t, self.config.n_stats)
        cond = torch.cat([noise, self.embeddings(class_vector)], dim=1)
        return self.generator(cond, picks, grid)

    def batch_norms(self) -> list[ConditionalBatchNorm]:
        """The conditional batch norms, in the order a forward pass uses them."""
        return [getattr(block, f"bn_{k}") for block in self.generator.layers
                if isinstance(block, GenBlock) for k in range(4)]
