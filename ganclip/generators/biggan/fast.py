"""The fast inference path: :class:`FastBigGAN`, built from a :class:`~.model.BigGAN` at load.

Spectral norms folded into plain weights; each conditional batch norm one per-sample
per-channel affine computed once per batch; an upsample followed by a 3×3 conv done as one
stride-2 transposed conv; channels-last tensors; fp32, bf16 or fp16. On CPUs, weights packed
once for oneDNN; a batch shares the weight-heavy low-resolution layers and goes through the
high-resolution ones sample by sample, several side by side on their share of the cores,
where each norm and ReLU fold into the conv before it. Same output as the module to ~1e-4
in fp32; its speed is measured by ``benchmarks/generators.py``. The convolutions and fused
pieces it is built of are in :mod:`.ops`.

The tunables below are read from this module when a batch runs: set them here (not on the
package) to change them.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

from ganclip.generators.biggan.model import (BASE_GRID, BigGAN, GenBlock, SelfAttention,
                                             SNConv2d, _stats_at, extend_grid,
                                             truncation_weights)
from ganclip.generators.biggan.ops import (FOLD_RATIO, _affine_relu, _Conv, _tap_sums, _to_rgb,
                                           _upsample_conv_kernel, _upsampled_residual,
                                           packs_weights)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
ATTENTION_QUERIES = 512  # queries per block in the fast path's attention
BAND_PIXELS = 4096  # pixels per band of the last block's output (FastBigGAN._banded_end)
TAIL_WORKERS = 4  # most samples in the per-sample tail at once (FastBigGAN._tail_pool)


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse; call once, early, in a rendering process.

    A frame allocates activations of tens of MB. glibc serves blocks that large with fresh
    ``mmap``s and unmaps them when freed, so every batch page-faults its memory in anew, a
    noticeable share of a BigGAN frame's time on the CPU (``benchmarks/generators.py
    --keep-freed-memory`` measures it). With mmap off and trimming off, each batch reuses the
    last one's memory; the process keeps its peak size instead of shrinking between batches.
    It changes the whole process's malloc, so the library never does it on its own. Returns
    whether it took effect (glibc only).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))


def _intra_op_threads(n: int) -> None:
    """Give the calling thread ``n`` intra-op threads (torch, OpenMP and MKL are per thread)."""
    torch.get_num_threads()  # torch's lazy per-thread setup first, or it would undo this
    torch.set_num_threads(n)


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
    grid : (rows, columns) of the first feature map; (4, 4) as trained, more for a wider or
        taller picture (:func:`~ganclip.generators.biggan.model.extend_grid`)
    """

    def __init__(self, model: BigGAN, *, device="cpu", dtype=torch.float32,
                 grid: tuple[int, int] = (BASE_GRID, BASE_GRID)):
        self.config, self.grid = model.config, tuple(grid)
        self.device, self.dtype = torch.device(device), dtype
        with torch.no_grad():
            self._take_conditioning(model)
            self.plan = [self._step(layer) for layer in model.generator.layers]
            self._take_output(model.generator)
        self.split = self._per_sample_from(model.generator.layers)
        self.local = threading.local()  # each thread's buffers, see _buffer
        self.pool = None  # ((workers, threads), executor) for the tail, see _tail_pool

    def _fp32(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.detach().to(device=self.device, dtype=torch.float32)

    def _conv(self, weight, bias=None, **kwargs) -> _Conv:
        cast = dict(device=self.device, dtype=self.dtype)
        return _Conv(weight.detach().to(**cast),
                     None if bias is None else bias.detach().to(**cast), **kwargs)

    def _take_conditioning(self, model: BigGAN) -> None:
        """What the per-batch fp32 part reads: the class embedding, ``gen_z``, and every
        conditional batch norm's scale and offset weights and statistics, concatenated."""
        gen = model.generator
        self.embed = self._fp32(model.embeddings.weight)  # [z_dim, classes]
        self.gen_z = (self._fp32(gen.gen_z.weight()), self._fp32(gen.gen_z.bias))
        norms = model.batch_norms()
        self.bn_sizes = [bn.running_means.shape[1] for bn in norms]
        self.bn_scale_offset = self._fp32(torch.cat([bn.scale.weight() for bn in norms]
                                                    + [bn.offset.weight() for bn in norms]))
        # A conv's bias followed by a norm is the norm's mean moved: (x + b) - m = x - (m - b).
        # bn_0 follows the previous block's residual sum: nothing to fold there.
        biases = [b for block in gen.layers if isinstance(block, GenBlock)
                  for b in (0, block.conv_0.bias, block.conv_1.bias, block.conv_2.bias)]
        self.bn_means = self._fp32(torch.cat([bn.running_means - b
                                              for bn, b in zip(norms, biases)], 1))
        self.bn_vars = self._fp32(torch.cat([bn.running_vars for bn in norms], 1))

    def _step(self, layer) -> tuple:
        """A layer as a step of the plan: ``("attention", qkv_conv, out_conv)`` or
        ``("block", upsample, n_out, convs)``, spectral norms folded into the weights."""
        if isinstance(layer, SelfAttention):
            qkv = torch.cat([layer.snconv1x1_theta.weight(), layer.snconv1x1_phi.weight(),
                             layer.snconv1x1_g.weight()])
            out = layer.gamma * layer.snconv1x1_o_conv.weight()
            return ("attention", self._conv(qkv), self._conv(out))
        w1 = layer.conv_1.weight()
        convs = [self._conv(layer.conv_0.weight()),
                 self._conv(_upsample_conv_kernel(w1), padding=1, transposed=True)
                 if layer.upsample else self._conv(w1, padding=1),
                 self._conv(layer.conv_2.weight(), padding=1),
                 self._conv(layer.conv_3.weight(), layer.conv_3.bias)]
        return ("block", layer.upsample, layer.n_out, convs)

    def _take_output(self, gen) -> None:
        """The last batch norm's statistics, gain and bias, and the 3 used channels of
        ``conv_to_rgb`` as one matrix of every tap's outputs."""
        self.last_norm = [self._fp32(t) for t in (gen.bn.running_means, gen.bn.running_vars,
                                                   gen.bn.weight, gen.bn.bias)]
        rgb = gen.conv_to_rgb.weight()[:3]  # [3, C, 3, 3] → [27, C]: every tap's 3 outputs
        self.to_rgb = (rgb.permute(2, 3, 0, 1).reshape(27, -1).to(self.device, self.dtype),
                       self._fp32(gen.conv_to_rgb.bias[:3]))

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
        if not packs_weights(self.device):
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
        # after the product with the values (a [queries, c/2] division, not [queries, pixels/4]),
        # faster than torch.softmax. scaled_dot_product_attention would take its slow generic
        # path, the values being wider than the keys.
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
        batch (glibc returns them when freed), a large share of the time of the last layers.
        The reused ones are the block outputs at the highest resolutions,
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
        softmax, Python between ops): samples side by side, each on its share of the cores, go
        faster. Each sample in flight holds its own tail tensors (``benchmarks/biggan_memory.py``
        measures them), so at most :data:`TAIL_WORKERS` run at once; the workers split the
        torch threads evenly. None where that leaves one worker.
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
        x, gains, shifts = self._start(noise, class_vector, truncation)
        last = len(self.plan) - 1
        head = min(self.split, last)
        x = self._steps(x, 0, head, gains, shifts)
        if self.split > last:
            return torch.tanh_(self._last_step(self._steps(x, head, last, gains, shifts),
                                               gains, shifts))
        return self._tail(x, head, gains, shifts)

    def _start(self, noise, class_vector, truncation):
        """The per-batch fp32 part: every norm's gains and shifts (:meth:`_norm_affines`), and
        ``gen_z``'s output ``[B, 16·ch, 4, 4]`` in ``dtype``, channels-last."""
        noise = torch.as_tensor(noise, device=self.device, dtype=torch.float32)
        y = torch.as_tensor(class_vector, device=self.device, dtype=torch.float32)
        t = np.broadcast_to(np.asarray(truncation, np.float64), (len(noise),))
        picks = truncation_weights(t, self.config.n_stats)
        cond = torch.cat([noise, y @ self.embed.T], dim=1)
        gains, shifts = self._norm_affines(cond, picks)  # the last ones for the final norm
        x = F.linear(cond, *self.gen_z).to(self.dtype)
        x = x.reshape(len(x), 4, 4, -1).permute(0, 3, 1, 2)  # TF order: already channels-last
        if self.grid != (BASE_GRID, BASE_GRID):
            x = extend_grid(x, self.grid).contiguous(memory_format=torch.channels_last)
        return x, gains, shifts

    def _tail(self, x, first: int, gains, shifts) -> torch.Tensor:
        """``self.plan[first:]`` and the output, one sample at a time, several side by side
        where :meth:`_tail_pool` gives workers: the images ``[B, 3, side, side]``."""
        last = len(self.plan) - 1

        def one_sample(i):
            one = slice(i, i + 1)
            sample_gains, sample_shifts = [g[one] for g in gains], [s[one] for s in shifts]
            with torch.inference_mode():  # per thread
                h = self._steps(x[one], first, last, sample_gains, sample_shifts)
                return torch.tanh_(self._last_step(h, sample_gains, sample_shifts))

        pool = self._tail_pool(len(x))
        if pool is None:
            images = [one_sample(i) for i in range(len(x))]
        else:
            threads = torch.get_num_threads()
            try:
                images = list(pool.map(one_sample, range(len(x))))
            finally:
                torch.set_num_threads(threads)  # the workers' setting is also torch's default
        return images[0] if len(images) == 1 else torch.cat(images)

    def _last_step(self, x, gains, shifts) -> torch.Tensor:
        """The plan's last step, the last norm and ReLU, and to_rgb: fp32 ``[B, 3, side, side]``
        before the tanh; banded (:meth:`_banded_end`) when the last step is an upsampling block
        and one sample runs on the CPU."""
        step, last = self.plan[-1], len(self.plan) - 1
        if step[0] != "block" or not step[1] or len(x) != 1 or self.split > last:
            x = self._steps(x, last, last + 1, gains, shifts)
            return _to_rgb(_affine_relu(x, gains[-1], shifts[-1]), *self.to_rgb)
        k = self._first_norm(last)
        h = self._bottleneck(k, x, step[3], gains[k:k + 4], shifts[k:k + 4])
        return self._banded_end(x, h, step[3][3], gains[-1], shifts[-1])

    def _banded_end(self, x, h, conv: _Conv, gain, shift) -> torch.Tensor:
        """The last block's residual sum, the last norm and ReLU, and to_rgb, for one sample.

        The block's output, the largest tensor of the pass, is never made whole: a band of
        :data:`BAND_PIXELS` at a time gets the upsampled skip and the bias, the 1×1 conv, the
        norm and ReLU, and to_rgb's matmul while it is in the cache, instead of one pass over
        memory for each.

        Parameters
        ----------
        x : torch.Tensor [shape=(1, C, H/2, W/2)], the block's input (its skip)
        h : torch.Tensor [shape=(1, c, H, W)], the block before its last conv
        conv : _Conv, the block's last (1×1) conv
        gain, shift : torch.Tensor [shape=(1, n_out, 1, 1)], the last norm's
        """
        n_out = len(conv.bias)
        _, _, height, width = h.shape
        # The last norm folds into the residual sum: (skip + b + h·W)·g + s is
        # skip·g + (b·g + s) + h·(W·g), the skip scaled at a quarter of the pixels.
        gain, shift = gain.view(n_out), shift.view(n_out)
        skip = x[0, :n_out].permute(1, 2, 0) * gain  # [H/2, W/2, n_out]
        weight, bias = conv.matrix * gain, torch.addcmul(shift, conv.bias, gain)
        pixels = h[0].permute(1, 2, 0)  # [H, W, c], a view of the channels-last tensor
        rows = max(2, BAND_PIXELS // width // 2 * 2)
        band = h.new_empty(rows, width, n_out)
        products = h.new_empty(rows * width, 27)  # a band's pixels × (9 taps × 3 colours)
        taps = h.new_empty(27, height, width)
        for top in range(0, height, rows):
            n_rows = min(rows, height - top)
            flat = _upsampled_residual(band[:n_rows], skip[top // 2:(top + n_rows) // 2],
                                       pixels[top:top + n_rows], weight, bias).relu_()
            # pixel-major products are faster than the [27, pixels] matmul
            band_products = torch.mm(flat, self.to_rgb[0].T, out=products[:len(flat)])
            taps[:, top:top + n_rows].view(27, -1).copy_(band_products.T)
        return _tap_sums(taps.view(27, -1), self.to_rgb[1], 1, height, width)

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
