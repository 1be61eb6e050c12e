"""StyleGAN3 ("Alias-Free Generative Adversarial Networks", configs T and R), the generator
only, for inference.

The picture starts as Fourier features: sinusoids of fixed random frequencies sampled on a
grid, turned and shifted by an angle and offset learned from w and by a user's
:attr:`SynthesisInput.transform` (the camera). Then 14 :class:`SynthesisLayer`: a
modulated convolution (3x3 in config T, 1x1 in R) and a *filtered* leaky ReLU, which
upsamples (2x or 4x), applies the nonlinearity at that higher rate and low-pass filters
back down, so that no frequency above each layer's cutoff aliases into the picture. R's
downsampling filters are radially symmetric (a windowed jinc), the rest separable Kaiser
FIR filters (``scipy.signal.firwin``), designed and applied in :mod:`…stylegan3_ops`. The
last layer maps to RGB.

The modules, their ``state_dict`` names and constructor keywords are NVIDIA's
(``training/networks_stylegan3.py``), so a snapshot's ``G_ema`` loads strictly with
:func:`from_persistent`; nothing NVIDIA wrote is run.

Camera: the input's ``transform`` buffer holds the *inverse* of the picture's motion (an
output pixel at ``g`` shows what the untransformed picture has at ``transform @ g``); NVIDIA's
``gen_images.py`` stores ``inv(make_transform(...))`` there. :func:`user_transform` builds
such matrices for a camera that turns, moves and zooms, one per frame, and
:meth:`SynthesisNetwork.forward` takes them per sample (``transform=[B, 3, 3]``).

Precision: the layers NVIDIA runs in fp16 (``use_fp16``: those of the ``num_fp16_res``
highest sampling rates) compute their features in the dtype of the parameters
(``model.half()`` on CUDA gives fp16 features, clamped to ``conv_clamp`` as NVIDIA's are);
the other layers, the Fourier features, styles and modulated weights stay float32. On
CPUs the features run channels-last: PyTorch's depthwise (per-channel) filters there are
3-6x faster in that layout.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ganclip.errors import BadInputError
from ganclip.generators.stylegan.layers import (LRELU_SLOPE, FullyConnectedLayer,
                                                StyleGenerator, check_styles)
from ganclip.generators.stylegan.ops import CHANNELS_LAST
from ganclip.generators.stylegan.snapshot import Persistent, load_persistent, plain
from ganclip.generators.stylegan.stylegan3_ops import (design_lowpass_filter, filtered_lrelu,
                                                       modulated_conv2d)

FAMILY = "stylegan3"
KNOWN_CLASSES = ("Generator", "MappingNetwork", "FullyConnectedLayer", "SynthesisNetwork",
                 "SynthesisInput", "SynthesisLayer")
LRELU_GAIN = math.sqrt(2)  # keeps unit variance through the leaky ReLU
MAPPING_LAYERS = 2  # StyleGAN3's default mapping depth (StyleGAN2's is 8)


# -- the camera --------------------------------------------------------------------------------

def make_transform(translate, angle: float) -> np.ndarray:
    """NVIDIA's ``gen_images.make_transform`` with the angle in radians: the motion of the
    picture, rotated by ``angle`` and then moved by ``translate``.

    Parameters
    ----------
    translate : (x, y), in image widths and heights, x right, y down
    angle : float, radians; positive turns the picture counterclockwise on screen

    Returns
    -------
    np.ndarray [shape=(3, 3)], float64. The input's ``transform`` buffer wants its inverse,
    ``np.linalg.inv(make_transform(...))``, which is what :func:`user_transform` builds.
    """
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, s, translate[0]], [-s, c, translate[1]], [0, 0, 1]], np.float64)


def user_transform(angle, shift_x, shift_y, *, zoom=1.0) -> np.ndarray:
    """The input transforms (buffer convention) of a camera that turns, moves and zooms.

    Coordinates are those of StyleGAN3's input grid: the picture spans -0.5..0.5 on both
    axes (units of image widths and heights), x right, y down, origin at the centre. An
    output pixel at ``g`` shows the untransformed picture at ``R(angle) g / zoom + shift``
    (beyond its edges the network keeps drawing), i.e. the camera looks at ``shift``, turned
    clockwise on screen by ``angle`` (so the picture turns counterclockwise, as in
    :func:`make_transform`), ``zoom`` times closer. ``zoom`` below 1 raises the frequencies
    past the input's band, which the network fades out, so keep it near or above 1.

    In :func:`make_transform`'s terms, ``user_transform(a, *s) ==
    inv(make_transform(t, a))`` where ``s = -R(a) t`` (``t = -R(-a) s``), with
    ``R(a) = [[cos a, -sin a], [sin a, cos a]]``.

    Parameters
    ----------
    angle : float or np.ndarray [shape=(B,)], radians
    shift_x, shift_y : float or np.ndarray [shape=(B,)], image widths and heights
    zoom : float or np.ndarray [shape=(B,)], > 0; above 1 is closer

    Returns
    -------
    np.ndarray [shape=(3, 3)] for scalar arguments, else [shape=(B, 3, 3)], float64
    """
    angle, shift_x, shift_y, zoom = np.broadcast_arrays(
        *(np.asarray(v, np.float64) for v in (angle, shift_x, shift_y, zoom)))
    if np.any(zoom <= 0):
        raise BadInputError("a camera's zoom must be above 0")
    c, s = np.cos(angle) / zoom, np.sin(angle) / zoom
    m = np.zeros(angle.shape + (3, 3))
    m[..., 0, 0], m[..., 0, 1], m[..., 0, 2] = c, -s, shift_x
    m[..., 1, 0], m[..., 1, 1], m[..., 1, 2] = s, c, shift_y
    m[..., 2, 2] = 1
    return m


# -- the network -------------------------------------------------------------------------------

class SynthesisInput(torch.nn.Module):
    """Fourier features: ``channels`` sinusoids on a ``size`` grid, turned and shifted by w.

    Parameters
    ----------
    w_dim, channels : int
    size : int or (width, height), the grid in samples (the image plus margins)
    sampling_rate : float, samples per image width
    bandwidth : float, the highest frequency drawn, cycles per image width
    """

    def __init__(self, w_dim: int, channels: int, size, sampling_rate: float,
                 bandwidth: float):
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = np.broadcast_to(np.asarray(size), [2])
        self.sampling_rate = sampling_rate
        self.bandwidth = bandwidth
        # frequencies uniform over the disc of radius `bandwidth` (a normal vector's
        # direction, and a radius exp(-|v|²/4) whose distribution function is r²)
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)
        freqs *= bandwidth
        self.weight = torch.nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer("transform", torch.eye(3, 3))  # inverse of the picture's motion
        self.register_buffer("freqs", freqs)  # [channels, 2], cycles per image width
        self.register_buffer("phases", torch.rand([channels]) - 0.5)  # [channels], cycles

    def _apply(self, fn, recurse=True):
        # model.half() and .to(dtype) move this module but keep it float32: fp16's phase
        # error of 1e-3 cycles would move every picture
        before = {name: t.data for name, t in [*self.named_parameters(), *self.named_buffers()]}
        super()._apply(fn, recurse)
        now = {name: t for name, t in [*self.named_parameters(), *self.named_buffers()]}
        for name, old in before.items():
            if old.dtype == torch.float32 and now[name].dtype != torch.float32:
                now[name].data = old.to(now[name].device)
        return self

    def forward(self, w: torch.Tensor, transform: torch.Tensor | None = None) -> torch.Tensor:
        """w [B, w_dim] -> features [B, channels, height, width], float32, channels-last.

        ``transform`` [B, 3, 3] or [3, 3] replaces the ``transform`` buffer (same
        convention: see :func:`user_transform`)."""
        user = self.transform if transform is None else transform
        user = user.to(device=w.device, dtype=torch.float32).expand(w.shape[0], 3, 3)
        # the learned turn (cos, sin) and shift, as one inverse motion per sample
        t = self.affine(w.to(torch.float32))
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        c, s, tx, ty = t.unbind(1)
        zero, one = torch.zeros_like(c), torch.ones_like(c)
        turn = torch.stack([c, -s, zero, s, c, zero, zero, zero, one], 1).reshape(-1, 3, 3)
        shift = torch.stack([one, zero, -tx, zero, one, -ty, zero, zero, one], 1).reshape(-1, 3, 3)
        motion = turn @ shift @ user  # [B, 3, 3]: turn, then shift, then the user's

        freqs = self.freqs.to(torch.float32)
        phases = self.phases.to(torch.float32) + (freqs @ motion[:, :2, 2:]).squeeze(2)  # [B, C]
        freqs = freqs @ motion[:, :2, :2]  # [B, C, 2]
        # a zoom-out can push frequencies past the band: fade them out before they alias
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth)
                      / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        width, height = int(self.size[0]), int(self.size[1])
        gx = _pixel_centres(width, self.sampling_rate, w.device)  # image widths
        gy = _pixel_centres(height, self.sampling_rate, w.device)
        x = (gx[None, None, :, None] * freqs[:, None, None, :, 0]
             + gy[None, :, None, None] * freqs[:, None, None, :, 1]
             + phases[:, None, None, :])  # [B, height, width, C], cycles
        x = torch.sin(x * (2 * math.pi)) * amplitudes[:, None, None, :]
        x = x @ (self.weight.to(torch.float32) / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)  # [B, C, H, W], channels-last in memory

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, channels={self.channels}, size={list(self.size)}, "
                f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}")


def _pixel_centres(n: int, sampling_rate: float, device) -> torch.Tensor:
    """Where ``n`` samples at ``sampling_rate`` per image width sit: centred on 0 (the
    picture's centre), ``1 / sampling_rate`` apart: [n], in image widths."""
    return (torch.arange(n, dtype=torch.float32, device=device) + (0.5 - n / 2)) / sampling_rate


class SynthesisLayer(torch.nn.Module):
    """A modulated convolution and a filtered leaky ReLU (NVIDIA's keywords; ``use_fp16``
    and ``magnitude_ema_beta`` are training and precision choices, kept as attributes)."""

    def __init__(self, w_dim: int, is_torgb: bool, is_critically_sampled: bool,
                 use_fp16: bool, in_channels: int, out_channels: int, in_size, out_size,
                 in_sampling_rate, out_sampling_rate, in_cutoff: float, out_cutoff: float,
                 in_half_width: float, out_half_width: float, *, conv_kernel: int = 3,
                 filter_size: int = 6, lrelu_upsampling: int = 2,
                 use_radial_filters: bool = False, conv_clamp: float | None = 256,
                 magnitude_ema_beta: float = 0.999):
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = bool(is_torgb)
        self.is_critically_sampled = bool(is_critically_sampled)
        self.use_fp16 = bool(use_fp16)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = np.broadcast_to(np.asarray(in_size), [2])
        self.out_size = np.broadcast_to(np.asarray(out_size), [2])
        self.in_sampling_rate = in_sampling_rate
        self.out_sampling_rate = out_sampling_rate
        # the nonlinearity runs at lrelu_upsampling times the higher of the two rates
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (
            1 if is_torgb else lrelu_upsampling)
        self.in_cutoff, self.out_cutoff = in_cutoff, out_cutoff
        self.in_half_width, self.out_half_width = in_half_width, out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))  # mean square of the input

        self.up_factor = _ratio(self.tmp_sampling_rate, in_sampling_rate)
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        self.register_buffer("up_filter", design_lowpass_filter(
            self.up_taps, in_cutoff, in_half_width * 2, self.tmp_sampling_rate))
        self.down_factor = _ratio(self.tmp_sampling_rate, out_sampling_rate)
        self.down_taps = filter_size * self.down_factor \
            if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = bool(use_radial_filters and not is_critically_sampled)
        self.register_buffer("down_filter", design_lowpass_filter(
            self.down_taps, out_cutoff, out_half_width * 2, self.tmp_sampling_rate,
            radial=self.down_radial))

        # pad so that the output is out_size, centred as the input (the paper's Appendix C.3)
        pad_total = (self.out_size - 1) * self.down_factor + 1  # before downsampling
        pad_total -= (self.in_size + self.conv_kernel - 1) * self.up_factor  # after upsampling
        pad_total += self.up_taps + self.down_taps - 2  # what the two filters eat
        pad_lo = (pad_total + self.up_factor) // 2
        pad_hi = pad_total - pad_lo
        self.padding = [int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])]

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """[B, in_channels, in_size, in_size] and w [B, w_dim] -> [B, out_channels,
        out_size, out_size], in the parameters' dtype where NVIDIA's layer runs in fp16
        (``use_fp16``), else float32."""
        dtype = self.weight.dtype if self.use_fp16 else torch.float32
        x = x.to(dtype)
        if x.device.type == "cpu":
            x = x.contiguous(memory_format=CHANNELS_LAST)
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / math.sqrt(self.in_channels * self.conv_kernel ** 2))
        x = modulated_conv2d(x, self.weight, styles, demodulate=not self.is_torgb,
                             input_gain=self.magnitude_ema.to(torch.float32).rsqrt(),
                             padding=self.conv_kernel - 1, bias=self.bias.to(dtype))
        return filtered_lrelu(
            x, self.up_filter, self.down_filter, None, up=self.up_factor,
            down=self.down_factor, padding=self.padding,
            gain=1 if self.is_torgb else LRELU_GAIN, slope=1 if self.is_torgb else LRELU_SLOPE,
            clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"in_size={list(self.in_size)}, out_size={list(self.out_size)}, "
                f"up={self.up_factor}, down={self.down_factor}, is_torgb={self.is_torgb}")


def _ratio(high, low) -> int:
    factor = int(np.rint(high / low))
    if low * factor != high:
        raise BadInputError(f"sampling rates {high:g} and {low:g} are not an integer ratio")
    return factor


class SynthesisNetwork(torch.nn.Module):
    """ws [B, num_ws, w_dim] -> picture: the Fourier input, ``num_layers`` layers, ToRGB.

    Cutoffs rise geometrically from ``first_cutoff`` to half the resolution over the
    layers before the last ``num_critical`` (which are critically sampled, at the image's
    own rate); channels are ``min(channel_base / 2 / cutoff, channel_max)``. Keywords are
    NVIDIA's; the remaining ones (``conv_kernel``, ``use_radial_filters``, ``conv_clamp``, …)
    go to every :class:`SynthesisLayer`. ``num_fp16_res`` sets their ``use_fp16``: which
    of them compute in the parameters' dtype (fp16 after ``model.half()``).
    """

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, *,
                 channel_base: int = 32768, channel_max: int = 512, num_layers: int = 14,
                 num_critical: int = 2, first_cutoff: float = 2,
                 first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3,
                 margin_size: int = 10, output_scale: float = 0.25, num_fp16_res: int = 4,
                 **layer_kwargs):
        super().__init__()
        self.w_dim = w_dim
        self.num_ws = num_layers + 2
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_layers = num_layers
        self.num_critical = num_critical
        self.margin_size = margin_size
        self.output_scale = output_scale
        self.num_fp16_res = num_fp16_res

        last_cutoff = img_resolution / 2
        last_stopband = last_cutoff * last_stopband_rel
        exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
        cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
        stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
        # the lowest power of two that holds each stopband, at most the image's own rate
        sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
        half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
        sizes = sampling_rates + margin_size * 2
        sizes[-2:] = img_resolution
        channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
        channels[-1] = img_channels

        self.input = SynthesisInput(w_dim, int(channels[0]), int(sizes[0]),
                                    sampling_rates[0], cutoffs[0])
        self.layer_names = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(
                w_dim, idx == num_layers, idx >= num_layers - num_critical,
                sampling_rates[idx] * 2 ** num_fp16_res > img_resolution,
                int(channels[prev]), int(channels[idx]), int(sizes[prev]), int(sizes[idx]),
                int(sampling_rates[prev]), int(sampling_rates[idx]), cutoffs[prev],
                cutoffs[idx], half_widths[prev], half_widths[idx], **layer_kwargs)
            name = f"L{idx}_{layer.out_size[0]}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(self, ws: torch.Tensor, *, noise_mode: str = "const",
                noise_gain: torch.Tensor | None = None,
                transform: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """Draw pictures from styles.

        Parameters
        ----------
        ws : torch.Tensor [shape=(B, num_ws, w_dim)], one w per layer (from the mapping)
        noise_mode, noise_gain : accepted for StyleGAN2's interface; StyleGAN3 has no noise
        transform : torch.Tensor or np.ndarray [shape=(B, 3, 3)] or [shape=(3, 3)], or None:
            each sample's camera in the buffer's convention (:func:`user_transform`),
            instead of ``input.transform``, which it leaves as it is

        Returns
        -------
        torch.Tensor [shape=(B, img_channels, img_resolution, img_resolution)], float32,
        nominally in [-1, 1] but not clamped
        """
        check_styles(ws, self.num_ws, self.w_dim, noise_mode)
        if transform is not None:
            transform = torch.as_tensor(transform, dtype=torch.float32, device=ws.device)
            if tuple(transform.shape) not in ((3, 3), (ws.shape[0], 3, 3)):
                raise BadInputError(f"transform must be a [{ws.shape[0]}, 3, 3] (one per "
                                    f"sample) or [3, 3] matrix, not {tuple(transform.shape)}")
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0], transform)
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w)
        return (x.to(torch.float32) * self.output_scale).contiguous()

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution="
                f"{self.img_resolution}, img_channels={self.img_channels}, "
                f"num_layers={self.num_layers}, num_critical={self.num_critical}")


class Generator(StyleGenerator):
    """z (and a class label) -> picture: :class:`MappingNetwork` then :class:`SynthesisNetwork`.

    Parameters
    ----------
    z_dim, c_dim, w_dim : int, latent, label and style widths
    img_resolution : int, the side of the square picture
    img_channels : int, colours (3)
    mapping_kwargs : dict, keywords of :class:`MappingNetwork` (``num_layers`` defaults to
        StyleGAN3's 2)
    synthesis_kwargs : dict, keywords of :class:`SynthesisNetwork` and its layers; NVIDIA
        passes these flat (``**flat`` is merged in), as its ``stylegan3-t`` (defaults) and
        ``stylegan3-r`` (``conv_kernel=1, use_radial_filters=True``, doubled channels)
    """

    family = FAMILY

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int,
                 img_channels: int, *, mapping_kwargs: dict | None = None,
                 synthesis_kwargs: dict | None = None, **flat):
        super().__init__()
        synthesis_kwargs = {**(synthesis_kwargs or {}), **flat}
        self._build(SynthesisNetwork, z_dim=z_dim, c_dim=c_dim, w_dim=w_dim,
                    img_resolution=img_resolution, img_channels=img_channels,
                    mapping_kwargs={"num_layers": MAPPING_LAYERS, **(mapping_kwargs or {})},
                    synthesis_kwargs=synthesis_kwargs, recorded=synthesis_kwargs)


# -- snapshots ---------------------------------------------------------------------------------

def _layout_problem(model: Generator, node: Persistent) -> str | None:
    """Where the snapshot's own record of its layers (names, resampling, padding) differs
    from what its options build here; None when it does not."""
    net = node.children.get("synthesis")
    names = net.state.get("layer_names") if isinstance(net, Persistent) else None
    if names is not None and list(names) != model.synthesis.layer_names:
        return (f"has layers {', '.join(map(str, names))}, not "
                f"{', '.join(model.synthesis.layer_names)}")
    for name in model.synthesis.layer_names:
        theirs = net.children.get(name) if isinstance(net, Persistent) else None
        if not isinstance(theirs, Persistent):
            continue
        ours = getattr(model.synthesis, name)
        for attr in ("up_factor", "down_factor", "padding"):
            if attr in theirs.state and plain(theirs.state[attr]) != plain(getattr(ours, attr)):
                return (f"has {name}.{attr} {plain(theirs.state[attr])}, not "
                        f"{plain(getattr(ours, attr))}")
    return None


def from_persistent(node: Persistent, *, where="the snapshot") -> Generator:
    """Build a :class:`Generator` from a snapshot's ``G_ema`` (see
    :func:`~.snapshot.read_snapshot`) and load its tensors strictly.

    Parameters
    ----------
    node : Persistent, the generator, as data
    where : str or Path, what the messages name (the file)

    Raises
    ------
    SnapshotError
        a class StyleGAN3 does not have (naming it and where), options ganclip does not
        know, or layers or tensors that are not exactly the architecture's
    """
    return load_persistent(node, lambda: Generator(**plain(node.init_kwargs)),
                           family="StyleGAN3", known_classes=KNOWN_CLASSES, where=where,
                           layout_problem=_layout_problem)
