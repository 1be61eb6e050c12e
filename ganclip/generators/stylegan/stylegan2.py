"""StyleGAN2 and StyleGAN2-ADA ("Analyzing and Improving the Image Quality of StyleGAN",
configs E-F), the generator only, for inference.

A stack of :class:`SynthesisBlock`, one per octave from 4x4 up: each upsamples the
features with a modulated convolution (a weight scaled per sample by a style from w and
renormalised, "demodulated": :mod:`…stylegan2_ops`), adds per-pixel noise, and in the
default 'skip' architecture adds its own RGB picture to the upsampled picture of the
block before. The modules, their ``state_dict`` names and constructor keywords are
NVIDIA's (both the stylegan2-ada-pytorch ``training.networks`` and the stylegan3
repository's ``training.networks_stylegan2``, which compute the same thing), so a
snapshot's ``G_ema`` loads strictly with :func:`from_persistent`; nothing NVIDIA wrote is
run.

Precision: the model computes its features in the dtype of its parameters
(``model.half()`` on CUDA gives fp16 features, clamped to ``conv_clamp`` as NVIDIA's
fp16 layers are), while styles, the modulated weights and the RGB picture stay float32.

On CPUs the features run channels-last (the convolutions, the transposed ones and the
depthwise blur are all faster in that layout), each layer modulates whichever is smaller,
the weight or the features, layers keep what they derive from their weights (squared
norms, the weight in the convolution's layout) between calls, and the octaves near the
picture's size are drawn a few samples at a time. The numbers are the same to rounding
(1e-6 of the picture's range).
"""

from __future__ import annotations

import math

import torch

from ganclip.errors import BadInputError
from ganclip.generators.stylegan.layers import (DerivedTensors, FullyConnectedLayer,
                                                StyleGenerator, activation_gain, bias_act,
                                                check_styles)
from ganclip.generators.stylegan.ops import (CHANNELS_LAST, conv2d_resample, setup_filter,
                                             upsample2d)
from ganclip.generators.stylegan.snapshot import Persistent, load_persistent, plain
from ganclip.generators.stylegan.stylegan2_ops import modulated_conv2d

FAMILY = "stylegan2"
ARCHITECTURES = ("orig", "skip", "resnet")
RESAMPLE_FILTER = (1, 3, 3, 1)  # binomial low-pass of every published StyleGAN2
RESNET_GAIN = math.sqrt(0.5)  # a residual sum of two unit-variance branches stays unit
# on CPUs, octaves whose features (all samples together) take more bytes than this are drawn
# a few samples at a time (see SynthesisNetwork._draw)
FEATURE_BYTES = 8 * 2 ** 20
# keywords that choose how NVIDIA's code trained or laid out memory, not what it computes
INFERENCE_IRRELEVANT = ("fused_modconv_default", "fp16_channels_last", "channels_last")
KNOWN_CLASSES = ("Generator", "MappingNetwork", "FullyConnectedLayer", "SynthesisNetwork",
                 "SynthesisBlock", "SynthesisLayer", "ToRGBLayer", "Conv2dLayer")


class SynthesisLayer(DerivedTensors):
    """A modulated 3x3 convolution (optionally upsampling 2x), noise, bias, lrelu."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, *,
                 kernel_size: int = 3, up: int = 1, use_noise: bool = True,
                 activation: str = "lrelu", resample_filter=RESAMPLE_FILTER,
                 conv_clamp: float | None = None, channels_last: bool = False):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.act_gain = activation_gain(activation)
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def noise(self, x: torch.Tensor, *, mode: str, gain: torch.Tensor | None):
        """The noise to add: [res, res] (const), [B, 1, res, res] (random or with a gain),
        or None."""
        if not self.use_noise or mode == "none":
            return None
        if mode == "random":
            base = torch.randn([x.shape[0], 1, self.resolution, self.resolution],
                               device=x.device, dtype=x.dtype)
        else:
            base = self.noise_const.to(x.dtype)
        noise = base * self.noise_strength.to(x.dtype)
        if gain is not None:  # one factor per sample
            noise = noise * gain.to(device=x.device, dtype=x.dtype).reshape(-1, 1, 1, 1)
        return noise

    def forward(self, x: torch.Tensor, w: torch.Tensor, *, noise_mode: str = "const",
                noise_gain: torch.Tensor | None = None, fused: bool | None = True,
                gain: float = 1.0) -> torch.Tensor:
        """[B, in_channels, res / up, res / up] and w [B, w_dim] -> [B, out_channels, res, res]."""
        styles = self.affine(w)
        x = modulated_conv2d(x, self.weight, styles, up=self.up, padding=self.padding,
                             noise=self.noise(x, mode=noise_mode, gain=noise_gain),
                             resample_filter=self.resample_filter,
                             flip_weight=self.up == 1, fused=fused, derive=self.derived)
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return bias_act(x, self.bias.to(x.dtype), act=self.activation,
                        gain=self.act_gain * gain, clamp=clamp, inplace=True)


class ToRGBLayer(DerivedTensors):
    """A modulated 1x1 convolution to colours, not demodulated."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, *,
                 kernel_size: int = 1, conv_clamp: float | None = None,
                 channels_last: bool = False):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, *,
                fused: bool | None = True) -> torch.Tensor:
        """[B, in_channels, H, W] and w [B, w_dim] -> [B, out_channels, H, W]."""
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused,
                             derive=self.derived)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp, inplace=True)


class Conv2dLayer(torch.nn.Module):
    """A plain convolution with equalised learning rate: the 'resnet' blocks' skip path
    (1x1, upsampling 2x, no bias)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 bias: bool = True, activation: str = "linear", up: int = 1,
                 resample_filter=RESAMPLE_FILTER, conv_clamp: float | None = None,
                 channels_last: bool = False, trainable: bool = True):
        super().__init__()
        self.activation = activation
        self.up = up
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = activation_gain(activation)
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: torch.Tensor, *, gain: float = 1.0) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        x = conv2d_resample(x, w, self.resample_filter, up=self.up, padding=self.padding,
                            flip_weight=self.up == 1)
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        b = None if self.bias is None else self.bias.to(x.dtype)
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp,
                        inplace=True)


class SynthesisBlock(torch.nn.Module):
    """One octave: (upsampling conv0,) conv1, and its RGB contribution.

    ``in_channels`` 0 makes the first block, which starts from a learned constant.
    ``use_fp16``, ``fp16_channels_last`` and ``fused_modconv_default`` are NVIDIA's
    precision and memory choices, accepted and ignored (see the module's docstring).
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 img_channels: int, is_last: bool, *, architecture: str = "skip",
                 resample_filter=RESAMPLE_FILTER, conv_clamp: float | None = 256,
                 use_fp16: bool = False, fp16_channels_last: bool = False,
                 fused_modconv_default=True, **layer_kwargs):
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise BadInputError(f"unknown StyleGAN2 architecture '{architecture}'; "
                                f"available: {', '.join(ARCHITECTURES)}")
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2,
                                        resample_filter=resample_filter,
                                        conv_clamp=conv_clamp, **layer_kwargs)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution,
                                    conv_clamp=conv_clamp, **layer_kwargs)
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = int(is_last or architecture == "skip")
        if self.num_torgb:
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        if in_channels and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, 1, bias=False, up=2,
                                    resample_filter=resample_filter)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, *,
                noise_mode: str = "const", noise_gain: torch.Tensor | None = None,
                fused: bool | None = True):
        """Features and picture of the octave below -> those of this one.

        Parameters
        ----------
        x : torch.Tensor [shape=(B, in_channels, res / 2, res / 2)] or None (first block)
        img : torch.Tensor [shape=(B, img_channels, res / 2, res / 2)], float32, or None
        ws : torch.Tensor [shape=(B, num_conv + num_torgb, w_dim)], float32

        Returns
        -------
        (x [B, out_channels, res, res] in the parameters' dtype, img [B, img_channels, res,
        res] float32 or None)
        """
        dtype = self.conv1.weight.dtype
        layer = dict(noise_mode=noise_mode, noise_gain=noise_gain, fused=fused)
        w_iter = iter(ws.unbind(dim=1))
        if self.in_channels == 0:
            x = _layout(self.const.to(dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1]))
            x = self.conv1(x, next(w_iter), **layer)
        elif self.architecture == "resnet":
            x = _layout(x.to(dtype))
            y = self.skip(x, gain=RESNET_GAIN)
            x = self.conv0(x, next(w_iter), **layer)
            x = self.conv1(x, next(w_iter), gain=RESNET_GAIN, **layer)
            x = y + x
        else:
            x = _layout(x.to(dtype))
            x = self.conv0(x, next(w_iter), **layer)
            x = self.conv1(x, next(w_iter), **layer)

        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.num_torgb:
            y = self.torgb(x, next(w_iter), fused=fused).to(torch.float32)
            img = y if img is None else img + y
        return x, img


def _rows(x: torch.Tensor | None, start: int, count: int) -> torch.Tensor | None:
    return None if x is None else x[start:start + count]


def _layout(x: torch.Tensor) -> torch.Tensor:
    """Features channels-last on CPUs, where the convolutions, the transposed ones and the
    depthwise blur are all faster in that layout (several times, for the latter two), and
    as they are elsewhere."""
    return x.contiguous(memory_format=CHANNELS_LAST) if x.device.type == "cpu" else x


class SynthesisNetwork(torch.nn.Module):
    """ws [B, num_ws, w_dim] -> picture, through one :class:`SynthesisBlock` per octave.

    Channels at resolution r are ``min(channel_base // r, channel_max)``. ``num_fp16_res``
    (NVIDIA's count of fp16 octaves) is kept for the config only.
    """

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, *,
                 channel_base: int = 32768, channel_max: int = 512, num_fp16_res: int = 4,
                 **block_kwargs):
        super().__init__()
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise BadInputError(f"a StyleGAN2 makes square pictures of a power of two from "
                                f"4 up, not {img_resolution}")
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(2, int(math.log2(img_resolution)) + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = res == img_resolution
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim,
                                   res, img_channels, is_last, **block_kwargs)
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            setattr(self, f"b{res}", block)

    def forward(self, ws: torch.Tensor, *, noise_mode: str = "const",
                noise_gain: torch.Tensor | None = None,
                fused_modconv: bool | None = None) -> torch.Tensor:
        """Draw pictures from styles.

        Parameters
        ----------
        ws : torch.Tensor [shape=(B, num_ws, w_dim)], one w per layer (from the mapping)
        noise_mode : str, 'const' (the learned fixed noise), 'random' (fresh each call) or
            'none'
        noise_gain : torch.Tensor [shape=(B,)] or None, a factor on each sample's noise
            (0 is the same picture as ``noise_mode='none'``)
        fused_modconv : bool or None, see :func:`modulated_conv2d`; None: on CUDA NVIDIA's
            inference rule (fused unless the features are fp16 and the batch is more than
            one), on the CPU each layer's cheaper way (see :func:`modulated_conv2d`)

        Returns
        -------
        torch.Tensor [shape=(B, img_channels, img_resolution, img_resolution)], float32,
        nominally in [-1, 1] but not clamped
        """
        check_styles(ws, self.num_ws, self.w_dim, noise_mode)
        if noise_gain is not None:
            noise_gain = torch.as_tensor(noise_gain, dtype=torch.float32, device=ws.device)
            if tuple(noise_gain.shape) != (ws.shape[0],):
                raise BadInputError(f"noise_gain must be a [{ws.shape[0]}] tensor (one factor "
                                    f"per sample), not {tuple(noise_gain.shape)}")
        if fused_modconv is None and ws.device.type != "cpu":
            fp16 = self.b4.conv1.weight.dtype == torch.float16
            fused_modconv = ws.device.type == "cuda" and (not fp16 or ws.shape[0] == 1)
        img = self._draw(ws.to(torch.float32), 0, None, None, noise_mode=noise_mode,
                         noise_gain=noise_gain, fused=fused_modconv)
        return img.contiguous()

    def _draw(self, ws, start: int, x, img, *, noise_mode, noise_gain, fused):
        """The picture from the ``start``-th block on, given the features and picture
        before it. On CPUs, from the first block whose features (of all samples together)
        pass :data:`FEATURE_BYTES` on, a few samples at a time: their features then stay
        in the caches, which is faster than the batch in one piece (the same pictures, to
        rounding)."""
        w_idx = sum(getattr(self, f"b{res}").num_conv for res in self.block_resolutions[:start])
        for idx in range(start, len(self.block_resolutions)):
            block = getattr(self, f"b{self.block_resolutions[idx]}")
            batch = ws.shape[0]
            if ws.device.type == "cpu" and batch > 1:
                per_sample = (block.conv1.out_channels * block.resolution ** 2
                              * block.conv1.weight.element_size())
                rows = max(1, FEATURE_BYTES // per_sample)
                if rows < batch:
                    return torch.cat([self._draw(
                        ws[i:i + rows], idx, _rows(x, i, rows), _rows(img, i, rows),
                        noise_mode=noise_mode, noise_gain=_rows(noise_gain, i, rows),
                        fused=fused) for i in range(0, batch, rows)])
            # a block's RGB layer shares its w with the next block's first convolution
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, block_ws, noise_mode=noise_mode, noise_gain=noise_gain,
                           fused=fused)
        return img


class Generator(StyleGenerator):
    """z (and a class label) -> picture: :class:`MappingNetwork` then :class:`SynthesisNetwork`.

    Parameters
    ----------
    z_dim, c_dim, w_dim : int, latent, label and style widths
    img_resolution : int, the side of the square picture (a power of two)
    img_channels : int, colours (3)
    mapping_kwargs : dict, keywords of :class:`MappingNetwork`
    synthesis_kwargs : dict, keywords of :class:`SynthesisNetwork` and its blocks and layers
        (NVIDIA's stylegan3 repository passes these flat: ``**flat`` is merged in)
    """

    family = FAMILY

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int,
                 img_channels: int, *, mapping_kwargs: dict | None = None,
                 synthesis_kwargs: dict | None = None, **flat):
        super().__init__()
        synthesis_kwargs = {**(synthesis_kwargs or {}), **flat}
        relevant = {k: v for k, v in synthesis_kwargs.items() if k not in INFERENCE_IRRELEVANT}
        self._build(SynthesisNetwork, z_dim=z_dim, c_dim=c_dim, w_dim=w_dim,
                    img_resolution=img_resolution, img_channels=img_channels,
                    mapping_kwargs=dict(mapping_kwargs or {}),
                    synthesis_kwargs=synthesis_kwargs,
                    recorded={"synthesis_kwargs": relevant})


def _kwargs_of(node: Persistent) -> dict:
    """Our Generator's keywords from a snapshot's, with the defaults in which NVIDIA's two
    StyleGAN2 sources differ read from the objects themselves and written out."""
    kwargs = plain(node.init_kwargs)
    top = {k: kwargs.pop(k, node.state.get(k))
           for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
    mapping = kwargs.pop("mapping_kwargs", None) or {}
    synthesis = {**(kwargs.pop("synthesis_kwargs", None) or {}), **kwargs}
    for key in INFERENCE_IRRELEVANT:
        synthesis.pop(key, None)
    children = node.children
    if isinstance(children.get("mapping"), Persistent):
        mapping.setdefault("w_avg_beta", plain(children["mapping"].state.get("w_avg_beta")))
    net = children.get("synthesis")
    first = net.children.get("b4") if isinstance(net, Persistent) else None
    if isinstance(first, Persistent):  # 256 in the stylegan3 repository, None in ADA's
        layer = first.children.get("conv1")
        if isinstance(layer, Persistent):
            synthesis.setdefault("conv_clamp", plain(layer.state.get("conv_clamp")))
        if isinstance(net.state.get("num_fp16_res"), int):
            synthesis.setdefault("num_fp16_res", net.state["num_fp16_res"])
    return {**top, "mapping_kwargs": mapping, "synthesis_kwargs": synthesis}


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
        a class this family does not have (naming it and where), options ganclip does not
        know, or tensors that are not exactly the architecture's
    """
    return load_persistent(node, lambda: Generator(**_kwargs_of(node)), family="StyleGAN2",
                           known_classes=KNOWN_CLASSES, where=where)
