"""BigGAN-deep (Brock, Donahue & Simonyan 2019), the generator only, written for ganclip.

The module's ``state_dict()`` keys are exactly those of ``pytorch-pretrained-biggan``
0.1.1 (``embeddings.weight``, ``generator.gen_z.weight_orig``, …), so its published
``pytorch_model.bin`` files load strictly; that package is not needed at run time. Its
computation matches the reference's eval mode: every spectral-normed weight is
``weight_orig / σ`` with ``σ = uᵀ W v`` from the stored ``weight_u``/``weight_v`` (torch's
``spectral_norm`` runs no power iteration in eval mode), and every batch norm uses stored
statistics picked by the truncation.

Two ways to run it:

- :class:`BigGAN`, an ``nn.Module`` that reads like the paper and keeps the published layout;
- :class:`FastBigGAN`, built from it at load for inference: spectral norms folded into plain
  weights; each conditional batch norm one per-sample per-channel affine computed once per
  batch (the preceding conv's bias folded into its mean); an upsample followed by a 3×3 conv
  done as one stride-2 transposed conv (2.25× fewer multiply-adds); only the 3 used channels
  of ``conv_to_rgb``; channels-last tensors; fp32, bf16 or fp16. On CPUs, weights packed
  once for oneDNN; a batch shares the weight-heavy low-resolution layers and goes through the
  high-resolution ones sample by sample, several side by side on their share of the cores,
  where each norm and ReLU fold into the conv before it; the last block's output meets the
  last norm and ``conv_to_rgb`` in cache-sized bands of rows. Same output as the module to
  ~1e-4 in fp32; on the 2-core development CPU 2.1-2.8× the reference's frames/s at 128²,
  2.4-3.9× at 256², 4.5-6.1× at 512², moving from run to run on that shared machine
  (``benchmarks/generators.py``).

:class:`BigGANGenerator` wraps both in ganclip's generator protocol; :func:`load_biggan`
builds one from a weights folder.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import math
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganclip.errors import BadInputError, WeightsError
from ganclip.generators import PRECISIONS
from ganclip.weights import CHECKPOINTS, CONFIG

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
MIN_PSNR_DB = 30.0  # a reduced precision "auto" may pick must draw this close to fp32
PACKED_SHAPES = 1  # input shapes (batch sizes) a conv keeps packed weights for (memory)
ATTENTION_QUERIES = 512  # queries per block in the fast path's attention
FOLD_RATIO = 4  # fold a norm into its conv when the output has this many times the weights
BAND_PIXELS = 4096  # pixels per band of the last block's output (FastBigGAN._last_step)
TAIL_WORKERS = 4  # most samples in the per-sample tail at once (FastBigGAN._tail_pool)


# ---------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class BigGANConfig:
    """The fields of the published ``config.json``.

    ``layers`` holds one ``(upsample, in, out)`` per block, channels in units of
    ``channel_width``; the attention block sits before block ``attention_layer_position``.
    """

    output_dim: int = 128                   # side of the images, pixels
    z_dim: int = 128                        # noise size; also the class embedding's size
    class_embed_dim: int = 128              # recorded by the reference, unused by its model
    channel_width: int = 128                # channels per unit in ``layers``
    num_classes: int = 1000                 # ImageNet classes
    layers: tuple = ()                      # ((upsample, in_units, out_units), ...)
    attention_layer_position: int = 8       # the attention block goes before this block
    eps: float = 1e-4                       # batch-norm epsilon
    n_stats: int = 51                       # stored statistics for truncations 0, 1/50, …, 1

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "config") -> "BigGANConfig":
        """Build from a ``config.json`` dict; :class:`WeightsError` naming ``source`` and the field
        on an unknown, missing or mistyped field."""
        if not isinstance(d, dict):
            raise WeightsError(f"{source}: expected a JSON object of BigGAN settings")
        names = [f.name for f in fields(cls)]
        unknown = [k for k in d if k not in names]
        missing = [k for k in names if k not in d]
        if unknown or missing:
            what = "unknown field" if unknown else "missing field"
            raise WeightsError(f"{source}: {what} '{(unknown or missing)[0]}' "
                               f"(a BigGAN config has exactly: {', '.join(names)})")
        try:
            layers = tuple((bool(up), int(i), int(o)) for up, i, o in d["layers"])
            values = {k: (layers if k == "layers" else
                          float(d[k]) if k == "eps" else _integer(d[k])) for k in names}
        except (TypeError, ValueError) as e:
            raise WeightsError(f"{source}: a field has the wrong type ({e}); "
                               f"'layers' is a list of [upsample, in, out]") from None
        return cls(**values)

    @classmethod
    def from_json(cls, path) -> "BigGANConfig":
        """Read a ``config.json``; :class:`WeightsError` naming the file when it is bad."""
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise WeightsError(f"{path}: not a readable JSON config ({e})") from None
        return cls.from_dict(d, source=str(path))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = [list(layer) for layer in self.layers]
        return d


def _integer(value) -> int:
    if isinstance(value, bool) or int(value) != value:
        raise ValueError(f"{value!r} is not an integer")
    return int(value)


def _deep(side: int, layers) -> BigGANConfig:
    return BigGANConfig(output_dim=side, layers=tuple((bool(u), i, o) for u, i, o in layers))


_TRUNK = ((0, 16, 16), (1, 16, 16), (0, 16, 16), (1, 16, 8), (0, 8, 8))
# The published configs (pytorch-pretrained-biggan 0.1.1, convert_tf_to_pytorch.py): each
# resolution adds blocks at the end; only output_dim and layers differ.
BIGGAN_DEEP_128 = _deep(128, _TRUNK + ((1, 8, 4), (0, 4, 4), (1, 4, 2), (0, 2, 2), (1, 2, 1)))
BIGGAN_DEEP_256 = _deep(256, _TRUNK + ((1, 8, 8), (0, 8, 8), (1, 8, 4), (0, 4, 4), (1, 4, 2),
                                       (0, 2, 2), (1, 2, 1)))
BIGGAN_DEEP_512 = _deep(512, BIGGAN_DEEP_256.layers[:] + ((0, 1, 1), (1, 1, 1)))
CONFIGS = {f"biggan-deep-{c.output_dim}": c
           for c in (BIGGAN_DEEP_128, BIGGAN_DEEP_256, BIGGAN_DEEP_512)}


# ---------------------------------------------------------------------------------------------
# the model, in the published layout


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

    def forward(self, cond, picks):
        # gen_z's outputs are in TensorFlow's [4, 4, C] order
        x = self.gen_z(cond).reshape(-1, 4, 4, 16 * self.config.channel_width)
        x = x.permute(0, 3, 1, 2).contiguous()
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

    def forward(self, noise, class_vector, truncation):
        """Images from noise, class vectors and truncations, as the reference computes them.

        Parameters
        ----------
        noise : torch.Tensor [shape=(B, z_dim)], the reference's noise: truncation × unit latent
        class_vector : torch.Tensor [shape=(B, num_classes)]
        truncation : float or array [shape=(B,)], in (0, 1]; one per sample allowed

        Returns
        -------
        images : torch.Tensor [shape=(B, 3, output_dim, output_dim)], in [-1, 1]
        """
        t = np.broadcast_to(np.asarray(truncation, np.float64), (len(noise),))
        picks = truncation_weights(t, self.config.n_stats)
        cond = torch.cat([noise, self.embeddings(class_vector)], dim=1)
        return self.generator(cond, picks)

    def batch_norms(self) -> list[ConditionalBatchNorm]:
        """The conditional batch norms, in the order a forward pass uses them."""
        return [getattr(block, f"bn_{k}") for block in self.generator.layers
                if isinstance(block, GenBlock) for k in range(4)]


# ---------------------------------------------------------------------------------------------
# fast inference


def _upsample_conv_kernel(weight: torch.Tensor) -> torch.Tensor:
    """Kernel of the stride-2 transposed conv equal to nearest ×2 upsampling then ``weight``.

    Along each axis, output pixel 2m reads x[m-1]·w0 + x[m]·(w1+w2) and 2m+1 reads
    x[m]·(w0+w1) + x[m+1]·w2; as a transposed conv (stride 2, padding 1) that is the 4-tap
    kernel [w2, w1+w2, w0+w1, w0]. 16 taps per input pixel instead of 36.
    """
    taps = weight.new_tensor([[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]])  # [4 taps, 3 w]
    return torch.einsum("ya,xb,oiab->ioyx", taps, taps, weight)  # [in, out, 4, 4]


class _Conv:
    """One conv of the fast path (``weight`` already on its device, in its dtype).

    On CPUs the weight is packed into oneDNN's blocked layout and run through torch's own
    packed-weight ops (those ``torch.compile`` emits for CPUs): the plain ops re-lay the weight
    out on every call, most of the time of the large low-resolution layers. The best layout
    depends on the input's shape (the wrong one is 50× slower), so a weight is packed for the
    shapes it meets, the last :data:`PACKED_SHAPES` kept: another batch size costs one repack,
    a copy of the weights. Where the packed ops are missing the plain ops run, 1×1 convs as
    one matmul over the pixels (conv2d's im2col path is slow). ``add_to`` fuses a residual sum:
    ``add_to += conv(x)``.
    """

    def __init__(self, weight, bias=None, *, padding: int = 0, transposed: bool = False):
        self.weight = weight.contiguous(memory_format=torch.channels_last)
        self.bias, self.transposed = bias, transposed
        self.args = ([padding] * 2, [0, 0], [2, 2], [1, 1]) if transposed else \
            ([padding] * 2, [1, 1], [1, 1])  # padding, (output padding,) stride, dilation
        self.packs = {} if weight.device.type == "cpu" and _packed_ops() else None
        self.matrix = self.weight[:, :, 0, 0].T if weight.shape[2:] == (1, 1) else None

    def _packed(self, shape) -> torch.Tensor:
        if shape not in self.packs:
            while len(self.packs) >= PACKED_SHAPES:
                del self.packs[next(iter(self.packs))]
            pack = (torch.ops.mkldnn._reorder_convolution_transpose_weight if self.transposed
                    else torch.ops.mkldnn._reorder_convolution_weight)
            self.packs[shape] = pack(self.weight, *self.args, 1, list(shape))
        return self.packs[shape]

    def __call__(self, x: torch.Tensor, *, add_to: torch.Tensor | None = None) -> torch.Tensor:
        mkldnn, w, b, args = torch.ops.mkldnn, self.weight, self.bias, self.args
        if self.packs is not None:
            w = self._packed(tuple(x.shape))
            if self.transposed:
                out = mkldnn._convolution_transpose_pointwise(x, w, b, *args, 1, "none", [], "")
            elif add_to is not None:
                return mkldnn._convolution_pointwise_.binary(add_to, x, w, b, *args, 1, "add",
                                                             None, None, [], None)
            else:
                out = mkldnn._convolution_pointwise(x, w, b, *args, 1, "none", [], "")
        elif self.transposed:
            out = F.conv_transpose2d(x, w, b, stride=2, padding=args[0])
        elif w.shape[2:] == (1, 1):
            out = F.linear(x.permute(0, 2, 3, 1), w[:, :, 0, 0], b).permute(0, 3, 1, 2)
        else:
            out = F.conv2d(x, w, b, padding=args[0])
        return out if add_to is None else add_to.add_(out)

    def norm_relu(self, x: torch.Tensor, gain: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """``relu(conv(x) · gain + shift)``: this conv, then the batch norm and ReLU after it.

        For one sample on a CPU, where the weight is small beside the output (the
        high-resolution layers), the gain is folded into the weight's output channels and the
        shift is the bias, and oneDNN applies the ReLU as it writes: no pass over the output.
        Otherwise the conv, then one in-place pass (:func:`_affine_relu`).

        Parameters
        ----------
        x : torch.Tensor [shape=(B, in, H, W)], channels-last
        gain, shift : torch.Tensor [shape=(B, out, 1, 1)], per sample and channel
        """
        out_numel = x.shape[2] * x.shape[3] * (4 if self.transposed else 1) * len(shift[0])
        if (self.packs is None or len(x) != 1 or self.bias is not None
                or self.weight.numel() * FOLD_RATIO > out_numel):
            return _affine_relu(self(x), gain, shift)
        mkldnn, g = torch.ops.mkldnn, gain.reshape(-1)
        w = self.weight * (g[None, :, None, None] if self.transposed else g[:, None, None, None])
        w = w.contiguous(memory_format=torch.channels_last)
        if self.transposed:
            w = mkldnn._reorder_convolution_transpose_weight(w, *self.args, 1, list(x.shape))
            return mkldnn._convolution_transpose_pointwise(x, w, shift.reshape(-1), *self.args,
                                                           1, "relu", [], "")
        w = mkldnn._reorder_convolution_weight(w, *self.args, 1, list(x.shape))
        return mkldnn._convolution_pointwise(x, w, shift.reshape(-1), *self.args, 1, "relu", [],
                                             "")


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse; call once, early, in a rendering process.

    A frame allocates activations of 16-130 MB. glibc serves blocks that large with fresh
    ``mmap``s and unmaps them when freed, so every batch page-faults its memory in anew; on the
    2-core development machine that is 5-20% of a BigGAN frame on the CPU (more with batches).
    With mmap off and trimming off, each batch reuses the last one's memory; the process keeps
    its peak size instead of shrinking between batches. It changes the whole process's malloc,
    so the library never does it on its own. Returns whether it took effect (glibc only).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))


@functools.cache
def _packed_ops() -> bool:
    """Whether torch's packed-weight oneDNN conv ops exist here and agree with ``F.conv2d``."""
    try:
        x = torch.randn(1, 8, 5, 5).contiguous(memory_format=torch.channels_last)
        w = torch.randn(4, 8, 3, 3).contiguous(memory_format=torch.channels_last)
        packed = torch.ops.mkldnn._reorder_convolution_weight(w, [1, 1], [1, 1], [1, 1], 1)
        out = torch.ops.mkldnn._convolution_pointwise(x, packed, None, [1, 1], [1, 1], [1, 1],
                                                      1, "none", [], "")
        return bool(torch.allclose(out, F.conv2d(x, w, padding=1), atol=1e-4))
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


def _intra_op_threads(n: int) -> None:
    """Give the calling thread ``n`` intra-op threads (torch, OpenMP and MKL are per thread)."""
    torch.get_num_threads()  # torch's lazy per-thread setup first, or it would undo this
    torch.set_num_threads(n)


def _affine_relu(x: torch.Tensor, gain: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``relu(x · gain + shift)`` in place, per sample and channel: a whole batch norm and its
    ReLU."""
    return torch.addcmul(shift, x, gain, out=x).relu_()


def _to_rgb(x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The 3×3 conv to 3 channels as one matmul to 9 taps × 3 channels per pixel, then 9
    shifted sums over whole planes: 2× faster than the conv, which is slow with so few outputs.

    Parameters
    ----------
    x : torch.Tensor [shape=(B, C, H, W)], channels-last
    taps : torch.Tensor [shape=(27, C)], rows in (ky, kx, rgb) order
    bias : torch.Tensor [shape=(3,)], fp32

    Returns
    -------
    rgb : torch.Tensor [shape=(B, 3, H, W)], fp32
    """
    b, c, h, w = x.shape
    return _tap_sums(taps @ x.permute(1, 0, 2, 3).reshape(c, -1), bias, b, h, w)


def _upsampled_residual(out: torch.Tensor, skip: torch.Tensor, h: torch.Tensor,
                        weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """An upsampling block's end: ``out = h · weight + bias + nearest ×2 upsample of skip``,
    its 1×1 conv as one matmul over the pixels, the skip never upsampled in memory.

    Parameters
    ----------
    out : torch.Tensor [shape=(..., H, W, n_out)], pixel-major, written
    skip : torch.Tensor [shape=(..., H/2, W/2, n_out)], pixel-major view
    h : torch.Tensor [shape=(..., H, W, c)], pixel-major view
    weight : torch.Tensor [shape=(c, n_out)], the 1×1 conv's
    bias : torch.Tensor [shape=(n_out,)]

    Returns
    -------
    out as ``[pixels, n_out]``
    """
    *lead, height, width, n_out = out.shape
    blocks = (*lead, height // 2, 2, width // 2, 2, n_out)  # each skip pixel's 2×2 pixels
    torch.add(skip[..., :, None, :, None, :].expand(blocks), bias, out=out.view(blocks))
    return out.view(-1, n_out).addmm_(h.reshape(-1, h.shape[-1]), weight)


def _tap_sums(t: torch.Tensor, bias: torch.Tensor, b: int, h: int, w: int) -> torch.Tensor:
    """``bias`` plus each tap's products ``t [27, B·H·W]`` shifted into place:
    ``[B, 3, H, W]``."""
    t = t.float().view(3, 3, 3, b, h, w)
    out = bias.view(3, 1, 1, 1).expand(3, b, h, w).clone()
    for ky in range(3):
        for kx in range(3):
            dy, dx = ky - 1, kx - 1  # out[y, x] += t[ky, kx][y + dy, x + dx]
            out[..., max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)] += \
                t[ky, kx, ..., max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)]
    return out.permute(1, 0, 2, 3)


class FastBigGAN:
    """Inference-only BigGAN built from a :class:`BigGAN`: same output, less work.

    Per batch, everything that depends only on ``(noise, class, truncation)`` is computed once
    in fp32: the class embedding, and for every batch norm its per-sample gain
    ``(1 + scale(cond)) / sqrt(var_t + eps)`` and shift ``offset(cond) - mean_t · gain`` (one
    matmul for all of them). The image path is then convolutions and ``relu(x·gain + shift)``
    in ``dtype``, channels-last.

    Parameters
    ----------
    model : BigGAN, with its weights (any device; it is read, not kept)
    device : str or torch.device, where to run
    dtype : torch.dtype, of the image path's weights and activations
    """

    def __init__(self, model: BigGAN, *, device="cpu", dtype=torch.float32):
        self.config = model.config
        self.device, self.dtype = torch.device(device), dtype
        g = model.generator
        f32 = dict(device=self.device, dtype=torch.float32)

        def conv(w, b=None, **kwargs):
            cast = dict(device=self.device, dtype=dtype)
            return _Conv(w.detach().to(**cast), None if b is None else b.detach().to(**cast),
                         **kwargs)

        with torch.no_grad():
            self.embed = model.embeddings.weight.detach().to(**f32)  # [z_dim, classes]
            self.gen_z = (g.gen_z.weight().to(**f32), g.gen_z.bias.detach().to(**f32))
            norms = model.batch_norms()
            self.bn_sizes = [bn.running_means.shape[1] for bn in norms]
            self.bn_scale_offset = torch.cat([bn.scale.weight() for bn in norms]
                                             + [bn.offset.weight() for bn in norms]).to(**f32)
            # A conv's bias followed by a norm is the norm's mean moved: (x + b) - m = x - (m - b).
            # bn_0 follows the previous block's residual sum: nothing to fold there.
            biases = [b for block in g.layers if isinstance(block, GenBlock)
                      for b in (0, block.conv_0.bias, block.conv_1.bias, block.conv_2.bias)]
            self.bn_means = torch.cat([bn.running_means - b for bn, b in zip(norms, biases)],
                                      1).to(**f32)
            self.bn_vars = torch.cat([bn.running_vars for bn in norms], 1).to(**f32)
            self.plan = []  # ("attention", weights) or ("block", upsample, n_out, convs)
            for layer in g.layers:
                if isinstance(layer, SelfAttention):
                    qkv = torch.cat([layer.snconv1x1_theta.weight(), layer.snconv1x1_phi.weight(),
                                     layer.snconv1x1_g.weight()])
                    out = layer.gamma * layer.snconv1x1_o_conv.weight()
                    self.plan.append(("attention", conv(qkv), conv(out)))
                    continue
                w1 = layer.conv_1.weight()
                convs = [conv(layer.conv_0.weight()),
                         conv(_upsample_conv_kernel(w1), padding=1, transposed=True)
                         if layer.upsample else conv(w1, padding=1),
                         conv(layer.conv_2.weight(), padding=1),
                         conv(layer.conv_3.weight(), layer.conv_3.bias)]
                self.plan.append(("block", layer.upsample, layer.n_out, convs))
            self.split = self._per_sample_from(g.layers)
            self.local = threading.local()  # each thread's buffers, see _buffer
            self.pool = None  # ((workers, threads), executor) for the tail, see _tail_pool
            self.last_norm = [t.detach().to(**f32) for t in (g.bn.running_means,
                                                             g.bn.running_vars, g.bn.weight,
                                                             g.bn.bias)]
            rgb = g.conv_to_rgb.weight()[:3]  # [3, C, 3, 3] → [27, C]: every tap's 3 outputs
            self.to_rgb = (rgb.permute(2, 3, 0, 1).reshape(27, -1).to(self.device, dtype),
                           g.conv_to_rgb.bias[:3].detach().to(**f32))

    def _per_sample_from(self, layers) -> int:
        """The first step of the plan from which a batch runs one sample at a time.

        Weights dominate the low-resolution layers, so there a batch shares each pass over
        them; activations dominate the high-resolution ones, where one sample's convs already
        fill the CPU, and there each sample goes through alone (several at once on their own
        cores, :meth:`_tail_pool`): its norms fold into the convs (:meth:`_Conv.norm_relu`),
        its tensors are a batch's fraction (cache, peak memory) and reused by the thread's
        next sample (:meth:`_buffer`). The tail starts where every later step's output has
        :data:`FOLD_RATIO` times its weights. On CUDA, and without the packed oneDNN
        ops, the whole batch runs together.
        """
        if self.device.type != "cpu" or not _packed_ops():
            return len(self.plan)
        split, side, channels = 0, 4, 0
        for i, layer in enumerate(layers):
            if isinstance(layer, GenBlock):
                side, channels = side * (2 if layer.upsample else 1), layer.n_out
            weights = sum(conv.weight_orig.numel() for conv in layer.children()
                          if isinstance(conv, SNConv2d))
            if channels * side * side < FOLD_RATIO * weights:
                split = i + 1
        return split

    def _norm_affines(self, cond, picks):
        """Per-sample gain and shift of every batch norm, the last one's at the end.

        Returns
        -------
        gains, shifts : lists of torch.Tensor [shape=(B, C, 1, 1)], in ``dtype``
        """
        eps = self.config.eps
        scale, offset = (cond @ self.bn_scale_offset.T).chunk(2, dim=1)
        gain = (1 + scale) * torch.rsqrt(_stats_at(self.bn_vars, picks) + eps)
        shift = offset - _stats_at(self.bn_means, picks) * gain
        means, vars_, weight, bias = self.last_norm
        last_gain = weight * torch.rsqrt(_stats_at(vars_, picks) + eps)
        last_shift = bias - _stats_at(means, picks) * last_gain
        sizes = self.bn_sizes + [len(weight)]
        gains = torch.cat([gain, last_gain], 1).to(self.dtype).split(sizes, 1)
        shifts = torch.cat([shift, last_shift], 1).to(self.dtype).split(sizes, 1)
        return [g[:, :, None, None] for g in gains], [s[:, :, None, None] for s in shifts]

    @staticmethod
    def _attention(x, qkv_conv, out_conv):
        b, c, h, w = x.shape
        qkv = qkv_conv(x)
        pooled = F.max_pool2d(qkv[:, c // 8:], 2)  # keys and values at half resolution
        q, k, v = (t.permute(0, 2, 3, 1).reshape(b, -1, t.shape[1])  # [B, pixels, channels]
                   for t in (qkv[:, :c // 8], pooled[:, :c // 8], pooled[:, c // 8:]))
        out = q.new_empty(b, h * w, c // 2)
        # A block of queries at a time keeps the attention matrix [queries, pixels/4] in the
        # cache (2 MB, not 16 per sample at 64²), and the softmax is done in place, normalised
        # after the product with the values (a [queries, c/2] division, not [queries, pixels/4]):
        # 1.3× faster than torch.softmax. scaled_dot_product_attention would take its slow
        # generic path, the values being wider than the keys.
        scores = q.new_empty(min(ATTENTION_QUERIES, h * w), k.shape[1])
        for i in range(b):
            keys = k[i].T.contiguous()
            for j in range(0, h * w, ATTENTION_QUERIES):
                rows = slice(j, j + ATTENTION_QUERIES)
                s = torch.mm(q[i, rows], keys, out=scores[:len(q[i, rows])])
                s.sub_(s.amax(dim=1, keepdim=True)).exp_()
                torch.mm(s, v[i], out=out[i, rows]).div_(s.sum(dim=1, keepdim=True))
        return out_conv(out.view(b, h, w, c // 2).permute(0, 3, 1, 2), add_to=x)

    def _buffer(self, key, shape) -> torch.Tensor:
        """A channels-last tensor of ``shape`` kept for ``key`` and reused by the next batch.

        Fresh tensors of tens of MB come from ``mmap`` and are page-faulted in anew by every
        batch (glibc returns them when freed): on the 2-core CPU that was a third of the time of
        the large last layers. The reused ones are the block outputs at the highest resolutions,
        tensors the pass holds at its peak anyway, so the peak does not grow; they stay
        allocated between batches. Each thread has its own (the tail's workers run at once);
        one call at a time per :class:`FastBigGAN`.
        """
        buffers = self.local.__dict__.setdefault("buffers", {})
        buf = buffers.get(key)
        if buf is None or tuple(buf.shape) != tuple(shape):
            buffers.pop(key, None)
            buf = torch.empty(shape, device=self.device, dtype=self.dtype,
                              memory_format=torch.channels_last)
            buffers[key] = buf
        return buf

    def _tail_pool(self, batch: int) -> ThreadPoolExecutor | None:
        """Threads that take the batch's samples through the per-sample tail side by side.

        One sample's tail on every core scales badly (small convs, norms, the attention's
        softmax, Python between ops): on the 2-core CPU, two samples at once on one core each
        are 10-20% faster at 128² and 256². Each sample in flight holds its own tail tensors
        (about 370 MiB at 512², ``benchmarks/biggan_memory.py``), so at most
        :data:`TAIL_WORKERS` run at once; the workers split the torch threads evenly. None
        where that leaves one worker.
        """
        threads = torch.get_num_threads()
        workers = max(w for w in range(1, min(batch, threads, TAIL_WORKERS) + 1)
                      if threads % w == 0)
        if workers < 2:
            return None
        if self.pool is None or self.pool[0] != (workers, threads):
            if self.pool is not None:
                self.pool[1].shutdown()
            self.pool = ((workers, threads),
                         ThreadPoolExecutor(workers, thread_name_prefix="biggan-tail",
                                            initializer=_intra_op_threads,
                                            initargs=(threads // workers,)))
        return self.pool[1]

    def _bottleneck(self, k, x, convs, gains, shifts) -> torch.Tensor:
        """A block up to its last conv: norm, ReLU, conv three times, then the last norm and
        ReLU."""
        # conv_0..2 have no bias: theirs are in the following norms' means
        h = torch.addcmul(shifts[0], x, gains[0], out=self._buffer(("bn_0", k), x.shape))
        h = convs[0].norm_relu(h.relu_(), gains[1], shifts[1])
        h = convs[1].norm_relu(h, gains[2], shifts[2])
        return convs[2].norm_relu(h, gains[3], shifts[3])

    def _block(self, k, x, upsample, n_out, convs, gains, shifts):
        h = self._bottleneck(k, x, convs, gains, shifts)
        if not upsample:
            return convs[3](h, add_to=x[:, :n_out].contiguous(memory_format=torch.channels_last))
        b, _, height, width = h.shape
        out = self._buffer(("out", k), (b, n_out, height, width))
        _upsampled_residual(out.permute(0, 2, 3, 1), x[:, :n_out].permute(0, 2, 3, 1),
                            h.permute(0, 2, 3, 1), convs[3].matrix, convs[3].bias)
        return out

    @torch.inference_mode()
    def __call__(self, noise, class_vector, truncation) -> torch.Tensor:
        """Same as :meth:`BigGAN.forward`; returns fp32 images ``[B, 3, side, side]`` in [-1, 1]."""
        noise = torch.as_tensor(noise, device=self.device, dtype=torch.float32)
        y = torch.as_tensor(class_vector, device=self.device, dtype=torch.float32)
        t = np.broadcast_to(np.asarray(truncation, np.float64), (len(noise),))
        picks = truncation_weights(t, self.config.n_stats)
        cond = torch.cat([noise, y @ self.embed.T], dim=1)
        gains, shifts = self._norm_affines(cond, picks)  # the last ones for the final norm
        x = F.linear(cond, *self.gen_z).to(self.dtype)
        x = x.reshape(len(x), 4, 4, -1).permute(0, 3, 1, 2)  # TF order: already channels-last
        last = len(self.plan) - 1
        head = min(self.split, last)
        x = self._steps(x, 0, head, gains, shifts)
        if self.split > last:
            return torch.tanh_(self._last_step(self._steps(x, head, last, gains, shifts),
                                               gains, shifts))

        def tail(i):
            one = slice(i, i + 1)
            g, s = [t[one] for t in gains], [t[one] for t in shifts]
            with torch.inference_mode():  # per thread
                return torch.tanh_(self._last_step(self._steps(x[one], head, last, g, s), g, s))

        pool = self._tail_pool(len(x))
        if pool is None:
            images = [tail(i) for i in range(len(x))]
        else:
            threads = torch.get_num_threads()
            try:
                images = list(pool.map(tail, range(len(x))))
            finally:
                torch.set_num_threads(threads)  # the workers' setting is also torch's default
        return images[0] if len(images) == 1 else torch.cat(images)

    def _last_step(self, x, gains, shifts) -> torch.Tensor:
        """The plan's last step, the last norm and ReLU, and to_rgb: fp32 ``[B, 3, side, side]``
        before the tanh.

        When the last step is an upsampling block and one sample runs on the CPU, its output,
        the largest tensor of the pass (32 MB at 256²), is never made whole: a band of
        :data:`BAND_PIXELS` at a time gets the upsampled skip and the bias, the 1×1 conv, the
        norm and ReLU, and to_rgb's matmul while it is in the cache, instead of one pass over
        memory for each.
        """
        step, last = self.plan[-1], len(self.plan) - 1
        if step[0] != "block" or not step[1] or len(x) != 1 or self.split > last:
            x = self._steps(x, last, last + 1, gains, shifts)
            return _to_rgb(_affine_relu(x, gains[-1], shifts[-1]), *self.to_rgb)
        k = self._first_norm(last)
        n_out, conv = step[2], step[3][3]
        h = self._bottleneck(k, x, step[3], gains[k:k + 4], shifts[k:k + 4])
        _, _, height, width = h.shape
        # The last norm folds into the residual sum: (skip + b + h·W)·g + s is
        # skip·g + (b·g + s) + h·(W·g), the skip scaled at a quarter of the pixels.
        gain, shift = gains[-1].view(n_out), shifts[-1].view(n_out)
        skip = x[0, :n_out].permute(1, 2, 0) * gain  # [H/2, W/2, n_out]
        weight, bias = conv.matrix * gain, torch.addcmul(shift, conv.bias, gain)
        pixels = h[0].permute(1, 2, 0)  # [H, W, c], a view of the channels-last tensor
        rows = max(2, BAND_PIXELS // width // 2 * 2)
        band = h.new_empty(rows, width, n_out)
        products = h.new_empty(rows * width, 27)  # a band's pixels × (9 taps × 3 colours)
        t = h.new_empty(27, height, width)
        for y in range(0, height, rows):
            r = min(rows, height - y)
            flat = _upsampled_residual(band[:r], skip[y // 2:(y + r) // 2], pixels[y:y + r],
                                       weight, bias).relu_()
            # pixel-major products are 2× faster than the [27, pixels] matmul
            p = torch.mm(flat, self.to_rgb[0].T, out=products[:len(flat)])
            t[:, y:y + r].view(27, -1).copy_(p.T)
        return _tap_sums(t.view(27, -1), self.to_rgb[1], 1, height, width)

    def _first_norm(self, step: int) -> int:
        """Index of the first norm (in :meth:`_norm_affines`' order) of ``self.plan[step]`` on."""
        return 4 * sum(s[0] == "block" for s in self.plan[:step])

    def _steps(self, x, first: int, last: int, gains, shifts) -> torch.Tensor:
        """Run ``self.plan[first:last]`` on ``x``; ``gains``, ``shifts`` as
        :meth:`_norm_affines`."""
        k = self._first_norm(first)
        for step in self.plan[first:last]:
            if step[0] == "attention":
                x = self._attention(x, *step[1:])
            else:
                x = self._block(k, x, *step[1:], gains[k:k + 4], shifts[k:k + 4])
                k += 4
        return x


# ---------------------------------------------------------------------------------------------
# the generator protocol


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``[B, 3, H, W]`` in [-1, 1] → ``uint8 [B, H, W, 3]``: ``(x + 1) · 127.5``, rounded."""
    x = images.float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().cpu().numpy()


class BigGANGenerator:
    """BigGAN-deep with ganclip's generator protocol.

    Parameters
    ----------
    model : BigGAN, with its weights loaded (kept as the readable reference path)
    device : str or torch.device, where the fast path runs
    precision : {"auto", "fp32", "bf16", "fp16"}, of the fast path (see :func:`load_biggan`)
    """

    def __init__(self, model: BigGAN, *, device="cpu", precision: str = "fp32"):
        cfg = model.config
        self.model = model.eval()
        self.config = cfg
        self.name = f"biggan-deep-{cfg.output_dim}"
        self.dim_z, self.n_classes, self.size = cfg.z_dim, cfg.num_classes, cfg.output_dim
        self.device = _check_device(device)
        if precision == "auto":
            precision = _auto_precision(model, self.device)
        self.precision = _check_precision(precision, self.device)
        self.fast = FastBigGAN(model, device=self.device, dtype=DTYPES[self.precision])

    def __call__(self, z: np.ndarray, y: np.ndarray, truncation: np.ndarray) -> np.ndarray:
        """Draw a batch of frames.

        Follows the reference's usage, ``truncated_noise_sample(truncation=t)`` being
        ``t × truncnorm(-2, 2)``: the network gets ``noise = z × truncation``, the class
        vector unchanged, and each frame's truncation picks its batch-norm statistics.

        Parameters
        ----------
        z : np.ndarray [shape=(B, 128)], unit latent, roughly in [-2, 2]
        y : np.ndarray [shape=(B, 1000)], class vectors (non-negative weights)
        truncation : np.ndarray [shape=(B,)], in (0, 1], one per frame; lower is calmer

        Returns
        -------
        frames : np.ndarray [shape=(B, size, size, 3)], uint8 RGB
        """
        z, y, t = self._check(z, y, truncation)
        return to_uint8(self.fast(z * t.astype(np.float32)[:, None], y, t))

    def _check(self, z, y, truncation):
        z = np.asarray(z, np.float32)
        y = np.asarray(y, np.float32)
        if z.ndim != 2 or z.shape[1] != self.dim_z or y.shape != (len(z), self.n_classes):
            raise BadInputError(f"{self.name}: expected z [B, {self.dim_z}] and y "
                                f"[B, {self.n_classes}], got {z.shape} and {y.shape}")
        t = np.asarray(truncation, np.float64)
        if t.ndim > 1 or t.size not in (1, len(z)):
            raise BadInputError(f"{self.name}: expected truncation [B] with B={len(z)}, "
                                f"got shape {t.shape}")
        t = np.broadcast_to(t.reshape(-1), (len(z),))
        if not np.all((t > 0) & (t <= 1)):
            raise BadInputError(f"{self.name}: truncation must be in (0, 1], got "
                                f"{t.min():g}..{t.max():g}")
        return z, y, t


# ---------------------------------------------------------------------------------------------
# loading


def _check_device(device) -> torch.device:
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise BadInputError(f"unknown device '{device}' ({_first_line(e)}); e.g. cpu, cuda") \
            from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BadInputError(f"device '{device}': torch sees no CUDA GPU here; use cpu")
    return device


def _check_precision(precision: str, device: torch.device) -> str:
    if precision not in DTYPES:
        raise BadInputError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu":
        # CPUs convolve fp16 in slow emulation, if at all: refuse rather than crawl.
        raise BadInputError("precision 'fp16' needs a CUDA device; on a CPU use 'fp32' or "
                            "'bf16'")
    return precision


def _auto_precision(model: BigGAN, device: torch.device) -> str:
    """fp32 on CPUs; on CUDA fp16 when it draws within :data:`MIN_PSNR_DB` of fp32 on a probe.

    bf16 is never picked. Against fp32 on the full-size random-weight models it measured
    31-33 dB at 128², 31-32 dB at 256² and 28-31 dB at 512² (:func:`precision_psnr` and
    ``benchmarks/generators.py``): at the bar, and below it at 512². And on CPUs without bf16
    hardware (AVX512-BF16, AMX), like the 2-core machine ganclip is developed on, it is
    emulated and 2-3× *slower* than fp32. fp16 keeps 3 more mantissa bits, but only CUDA runs
    it fast.
    """
    if device.type != "cuda":
        return "fp32"
    psnr = precision_psnr(model, "fp16", device=device)
    if psnr >= MIN_PSNR_DB:
        log.info("precision auto: fp16 (%.1f dB against fp32)", psnr)
        return "fp16"
    log.info("precision auto: fp16 is %.1f dB from fp32, below %.0f dB; using fp32",
             psnr, MIN_PSNR_DB)
    return "fp32"


def _find_files(path: Path) -> tuple[Path, Path]:
    """``(weights, config)`` for a folder, or for a weights file with ``config.json`` beside it."""
    if path.is_dir():
        found = [path / name for name in CHECKPOINTS if (path / name).is_file()]
        if not found:
            raise WeightsError(f"{path}: no {' or '.join(CHECKPOINTS)} in the folder")
        return found[0], path / CONFIG
    if not path.is_file():
        raise WeightsError(f"{path}: no such file or folder")
    if path.name == CONFIG:
        return _find_files(path.parent)
    return path, path.with_name(CONFIG)


def _read_state_dict(path: Path) -> dict:
    if path.suffix == ".safetensors":
        try:
            from safetensors import SafetensorError
            from safetensors.torch import load_file
        except ImportError:
            raise WeightsError(f"{path}: reading .safetensors needs the safetensors package "
                               f"(pip install safetensors)") from None
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as e:
            raise WeightsError(f"{path}: not a readable safetensors file ({e})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower():
            raise WeightsError(f"{path}: not a plain weights file (it holds objects that would "
                               f"run code when loaded) and was refused for safety") from None
        raise WeightsError(f"{path}: not a readable PyTorch weights file ({_first_line(e)})") \
            from None
    except (RuntimeError, OSError, EOFError, ValueError) as e:
        raise WeightsError(f"{path}: not a readable PyTorch weights file ({_first_line(e)})") \
            from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    return state


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def _names(keys, limit: int = 5) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def build_biggan(state_dict: dict, config: BigGANConfig, *, source: str = "weights") -> BigGAN:
    """A :class:`BigGAN` holding ``state_dict``, its keys and shapes matched strictly.

    Raises
    ------
    WeightsError
        naming up to 5 missing, unexpected and mis-shaped keys, in one line.
    """
    model = BigGAN(config)
    expected = model.state_dict()
    missing = expected.keys() - state_dict.keys()
    unexpected = state_dict.keys() - expected.keys()
    shapes = [f"{k} {tuple(state_dict[k].shape)} (expected {tuple(v.shape)})"
              for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = ([f"missing {_names(missing)}"] if missing else []) + \
                ([f"unexpected {_names(unexpected)}"] if unexpected else []) + \
                ([f"wrong shape {_names(shapes, 3)}"] if shapes else [])
        raise WeightsError(f"{source}: not BigGAN-deep-{config.output_dim} weights as its "
                           f"config describes: {'; '.join(parts)}")
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def load_biggan(path, *, device="cpu", precision: str = "auto",
                config: BigGANConfig | None = None) -> BigGANGenerator:
    """Load published BigGAN-deep weights as a ganclip generator.

    Parameters
    ----------
    path : str or Path, a folder with ``config.json`` and ``model.safetensors`` or
        ``pytorch_model.bin`` (safetensors preferred), or a weights file with ``config.json``
        beside it
    device : str or torch.device, where to run
    precision : {"auto", "fp32", "bf16", "fp16"}, of the fast path. "auto" is fp32 on CPUs
        and fp16 on CUDA when it draws within :data:`MIN_PSNR_DB` of fp32 on a probe batch
        (see :func:`_auto_precision`). "fp16" on a CPU is refused.
    config : BigGANConfig or None, instead of ``config.json``

    Returns
    -------
    generator : BigGANGenerator

    Raises
    ------
    WeightsError
        a missing or unreadable file, a config with a bad field, keys that do not match
        (strict), or a pickle that is not plain weights (refused, never run).
    BadInputError
        an unknown precision, or fp16 on a CPU.
    """
    device = _check_device(device)
    if precision != "auto":
        _check_precision(precision, device)
    weights, config_path = _find_files(Path(path).expanduser())
    if config is None:
        if not config_path.is_file():
            raise WeightsError(f"{weights}: no {CONFIG} beside it (expected {config_path})")
        config = BigGANConfig.from_json(config_path)
    model = build_biggan(_read_state_dict(weights), config, source=str(weights))
    return BigGANGenerator(model, device=device, precision=precision)


# ---------------------------------------------------------------------------------------------
# random weights and the precision check


def random_state_dict(config: BigGANConfig, *, seed: int = 0, batch: int = 4) -> dict:
    """Random weights in the published layout that keep activations in a sane range.

    Random ``weight_u``/``weight_v`` would make ``σ = uᵀ W v`` tiny and blow activations up,
    so ``u, v`` are run to the top singular vectors (power iteration); each batch norm's stored
    statistics are measured on a batch of random inputs at truncations 0.25, 0.6 and 1 (the
    way BigGAN's own "standing statistics" are) and interpolated across the ``n_stats`` rows.
    For tests and benchmarks: a tiny random model draws in milliseconds.
    """
    gen = torch.Generator().manual_seed(seed)
    model = BigGAN(config)
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if name.endswith(("weight_orig", "weight_u", "weight_v")):
                p.copy_(torch.randn(p.shape, generator=gen))
            elif name == "embeddings.weight":  # class embeddings about as large as the noise
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
            elif name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
            elif name.endswith("gamma"):  # 0 at init would switch attention off
                p.fill_(0.5)
        for m in model.modules():
            if isinstance(m, SNLinear):
                w = m.weight_orig.reshape(len(m.weight_orig), -1)
                u = F.normalize(m.weight_u, dim=0)
                for _ in range(30):
                    v = F.normalize(w.T @ u, dim=0)
                    u = F.normalize(w @ v, dim=0)
                m.weight_u.copy_(u), m.weight_v.copy_(v)
        _calibrate(model, gen, batch)
    return model.state_dict()


def _calibrate(model: BigGAN, gen: torch.Generator, batch: int,
               levels=(0.25, 0.6, 1.0)) -> None:
    """Set every batch norm's stored statistics from a batch's, at a few truncations."""
    norms = [m for m in model.modules() if isinstance(m, (ConditionalBatchNorm, BatchNorm))]
    measured = {id(m): [] for m in norms}

    def measure(module, args):  # before each norm runs: make it normalise with batch stats
        x = args[0]
        mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False)
        module.running_means[:] = mean
        module.running_vars[:] = var
        measured[id(module)].append((mean, var))

    hooks = [m.register_forward_pre_hook(measure) for m in norms]
    try:
        for level in levels:
            noise, y = random_inputs(batch, seed=int(torch.randint(1 << 30, (1,), generator=gen)),
                                     n_classes=model.config.num_classes, dim_z=model.config.z_dim)
            model(torch.as_tensor(noise * level), torch.as_tensor(y), level)
    finally:
        for h in hooks:
            h.remove()
    grid = np.linspace(0, 1, model.config.n_stats)
    # row j = linear interpolation of the measured levels at truncation j / (n_stats - 1)
    mix = torch.as_tensor(np.stack([np.interp(grid, levels, np.eye(len(levels))[k])
                                    for k in range(len(levels))], 1), dtype=torch.float32)
    for m in norms:
        for k, buffer in enumerate((m.running_means, m.running_vars)):
            buffer.copy_(mix @ torch.stack([pair[k] for pair in measured[id(m)]]))


def random_inputs(batch: int, *, seed: int = 0, n_classes: int = 1000, dim_z: int = 128):
    """A unit latent in [-2, 2] (clipped normal) and two-class mixes, like a ganclip plan's.

    Returns
    -------
    z : np.ndarray [shape=(batch, dim_z)], float32
    y : np.ndarray [shape=(batch, n_classes)], float32, rows summing to 1
    """
    rng = np.random.default_rng(seed)
    z = np.clip(rng.standard_normal((batch, dim_z)), -2, 2).astype(np.float32)
    y = np.zeros((batch, n_classes), np.float32)
    for row in y:
        row[rng.choice(n_classes, 2, replace=False)] = (0.7, 0.3)
    return z, y


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images, dB (inf when equal)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def precision_psnr(model, precision: str, *, device="cpu", batch: int = 2,
                   truncation: float = 0.5, seed: int = 0) -> float:
    """PSNR in dB of the fast path at ``precision`` against fp32, on uint8 frames.

    Parameters
    ----------
    model : BigGANGenerator, BigGAN or BigGANConfig (then random weights from
        :func:`random_state_dict`, seeded by ``seed``)
    precision : {"fp32", "bf16", "fp16"}
    device : str or torch.device
    batch : int, frames compared
    truncation : float, in (0, 1]
    seed : int, of the inputs (and of the random weights)
    """
    if isinstance(model, BigGANConfig):
        model = build_biggan(random_state_dict(model, seed=seed), model, source="random")
    elif isinstance(model, BigGANGenerator):
        model = model.model
    device = torch.device(device)
    z, y = random_inputs(batch, seed=seed, n_classes=model.config.num_classes,
                         dim_z=model.config.z_dim)
    noise, t = z * truncation, np.full(batch, truncation)
    frames = [to_uint8(FastBigGAN(model, device=device, dtype=DTYPES[p])(noise, y, t))
              for p in ("fp32", _check_precision(precision, device))]
    return psnr(*frames)

