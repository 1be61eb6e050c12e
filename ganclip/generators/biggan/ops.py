"""The fast path's operations: its convolutions (weights packed once for oneDNN on CPUs, a
norm and ReLU folded in where that pays), the upsample-and-conv kernel, and the fused pieces of
a block's end and of ``conv_to_rgb``."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

PACKED_SHAPES = 1  # input shapes (batch sizes) a conv keeps packed weights for (memory)
FOLD_RATIO = 4  # fold a norm into its conv when the output has this many times the weights


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
    depends on the input's shape (the wrong one is many times slower), so a weight is packed
    for the shapes it meets, the last :data:`PACKED_SHAPES` kept: another batch size costs one
    repack, a copy of the weights. Where the packed ops are missing the plain ops run, 1×1
    convs as one matmul over the pixels (conv2d's im2col path is slow). ``add_to`` fuses a
    residual sum: ``add_to += conv(x)``.
    """

    def __init__(self, weight, bias=None, *, padding: int = 0, transposed: bool = False):
        self.weight = weight.contiguous(memory_format=torch.channels_last)
        self.bias, self.transposed = bias, transposed
        self.args = ([padding] * 2, [0, 0], [2, 2], [1, 1]) if transposed else \
            ([padding] * 2, [1, 1], [1, 1])  # padding, (output padding,) stride, dilation
        self.packs = {} if packs_weights(weight.device) else None
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


def packs_weights(device: torch.device) -> bool:
    """Whether convs on ``device`` run on packed weights: on CPUs where torch has the ops."""
    return device.type == "cpu" and _packed_ops()


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


def _affine_relu(x: torch.Tensor, gain: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``relu(x · gain + shift)`` in place, per sample and channel: a whole batch norm and its
    ReLU."""
    return torch.addcmul(shift, x, gain, out=x).relu_()


def _to_rgb(x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The 3×3 conv to 3 channels as one matmul to 9 taps × 3 channels per pixel, then 9
    shifted sums over whole planes: faster than the conv, which is slow with so few outputs.

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
