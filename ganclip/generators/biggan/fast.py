"""The fast inference path: :class:`FastBigGAN`, built from a :class:`~.model.BigGAN` at load.

Spectral norms folded into plain weights; each conditional batch norm one per-sample
per-channel affine computed once per batch; an upsample followed by a 3×3 conv done as one
stride-2 transposed conv; channels-last tensors; fp32, bf16 or fp16. On CPUs, weights packed
once for oneDNN; a batch shares the weight-heavy low-resolution layers and goes through the
high-resolution ones sample by sample, several side by side on their share of the cores,
where each norm and ReLU fold into the conv before it. Same output as the module to ~1e-4
in fp32; its speed is measured by ``benchmarks/generators.py``."""

from __future__ import annotations

import ctypes
import functools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

from ganclip.generators.biggan.model import (BigGAN, GenBlock, SelfAttention, SNConv2d, _stats_at,
                                             truncation_weights)

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PACKED_SHAPES = 1  # input shapes (batch sizes) a conv keeps packed weights for (memory)
ATTENTION_QUERIES = 512  # queries per block in the fast path's attention
FOLD_RATIO = 4  # fold a norm into its conv when the output has this many times the weights
BAND_PIXELS = 4096  # pixels per band of the last block's output (FastBigGAN._last_step)
TAIL_WORKERS = 4  # most samples in the per-sample tail at once (FastBigGAN._tail_pool)


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
