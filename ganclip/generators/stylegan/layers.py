"""What the StyleGAN families share: bias + activation, the equalised fully connected layer,
the mapping network from z (and a class) to w, the demodulation of a modulated weight, and
the generator's outer shell (mapping then synthesis, its config, random initialisation).

The layers keep NVIDIA's parameter names, constructor keywords and runtime scaling
("equalised learning rate": weights are stored at unit scale and multiplied by
``lr_multiplier / sqrt(fan_in)`` on every call), so a snapshot's tensors and
``_init_kwargs`` load unchanged. StyleGAN2 and StyleGAN3 differ here only in defaults and
in a few keywords one of them lacks; :class:`MappingNetwork` takes the union.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ganclip.errors import BadInputError, lookup, one_line
from ganclip.generators.stylegan.snapshot import plain

LRELU_SLOPE = 0.2  # leaky ReLU's slope below zero in every StyleGAN
NORMALIZE_EPS = 1e-8  # keeps the 2nd-moment normalisation finite for an all-zero input
DEMODULATE_EPS = 1e-8  # keeps the demodulation finite for an all-zero style
NOISE_MODES = ("const", "random", "none")  # StyleGAN2's; StyleGAN3 takes them and has none

# name -> (function, gain that keeps unit variance through it); NVIDIA's def_gain values
ACTIVATIONS = {
    "linear": (lambda x: x, 1.0),
    "relu": (F.relu, math.sqrt(2)),
    "lrelu": (lambda x: F.leaky_relu(x, LRELU_SLOPE), math.sqrt(2)),
    "tanh": (torch.tanh, 1.0),
    "sigmoid": (torch.sigmoid, 1.0),
    "elu": (F.elu, 1.0),
    "selu": (F.selu, 1.0),
    "softplus": (F.softplus, 1.0),
    "swish": (lambda x: torch.sigmoid(x) * x, math.sqrt(2)),
}


def activation_gain(act: str) -> float:
    """The gain NVIDIA applies after ``act`` by default (sqrt 2 for the ReLUs, else 1)."""
    return lookup(ACTIVATIONS, act, what="activation")[1]


def may_overwrite(x: torch.Tensor) -> bool:
    """Whether an intermediate may be overwritten: no gradient flows through it."""
    return not (torch.is_grad_enabled() and x.requires_grad)


def normalize_2nd_moment(x: torch.Tensor, *, dim: int = 1,
                         eps: float = NORMALIZE_EPS) -> torch.Tensor:
    """``x`` scaled to unit mean square along ``dim`` (z and class embeddings enter the
    mapping network this way)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, *, act: str = "linear",
             gain: float | None = None, clamp: float | None = None, dim: int = 1,
             inplace: bool = False) -> torch.Tensor:
    """Add a bias, apply an activation, scale and clamp, in that order (NVIDIA's
    ``bias_act``, as its reference path computes it).

    Parameters
    ----------
    x : torch.Tensor, any shape
    b : torch.Tensor [shape=(x.shape[dim],)] or None, in ``x``'s dtype
    act : str, a key of :data:`ACTIVATIONS`
    gain : float or None, the scale after the activation; None: the activation's default
    clamp : float or None, clip the result to ``[-clamp, clamp]`` (what keeps fp16 finite)
    dim : int, the axis ``b`` runs along
    inplace : bool, overwrite ``x`` (a caller's own intermediate) where no gradient is
        needed through it: one pass over memory instead of four

    Returns
    -------
    torch.Tensor, shaped and typed as ``x``
    """
    func, default_gain = lookup(ACTIVATIONS, act, what="activation")
    gain = default_gain if gain is None else float(gain)
    if b is not None:
        b = b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    if inplace and act in ("linear", "lrelu") and may_overwrite(x):
        if b is not None:
            x.add_(b)
        if act == "lrelu":
            F.leaky_relu_(x, LRELU_SLOPE)
    else:
        x = func(x if b is None else x + b)
        inplace = False
    if gain != 1:
        x = x.mul_(gain) if inplace else x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp_(-clamp, clamp) if inplace else x.clamp(-clamp, clamp)
    return x


def demodulation(styles: torch.Tensor, weight_energy: torch.Tensor) -> torch.Tensor:
    """The factors that renormalise a modulated weight to unit norm per output channel:
    ``|W·s|²`` per output channel is ``s² · Σ_k W²``, so the [B, O, I, k, k] weight is
    never built.

    Parameters
    ----------
    styles : torch.Tensor [shape=(B, I)], float32
    weight_energy : torch.Tensor [shape=(O, I)], ``weight.square().sum([2, 3])``

    Returns
    -------
    torch.Tensor [shape=(B, O)], float32
    """
    return (styles.square() @ weight_energy.t() + DEMODULATE_EPS).rsqrt()


class FullyConnectedLayer(torch.nn.Module):
    """A linear layer with equalised learning rate and a fused bias + activation.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool, whether there is an additive bias
    activation : str, see :data:`ACTIVATIONS`
    lr_multiplier : float, the runtime scale of weight and bias (weight gain is
        ``lr_multiplier / sqrt(in_features)``, bias gain ``lr_multiplier``)
    bias_init : float or sequence, the initial *effective* bias (StyleGAN3's convention;
        StyleGAN2 stores it undivided, which only differs when both it and the learning
        rate multiplier are non-default, which no network does)
    weight_init : float, standard deviation of the initial effective weight (StyleGAN3)
    trainable : bool, accepted for StyleGAN2's ``freeze_*`` options; nothing here trains
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True,
                 activation: str = "linear", lr_multiplier: float = 1.0,
                 bias_init=0.0, weight_init: float = 1.0, trainable: bool = True):
        super().__init__()
        activation_gain(activation)  # an unknown name fails here, not on the first call
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.weight = torch.nn.Parameter(
            torch.randn([out_features, in_features]) * (weight_init / lr_multiplier))
        if bias:
            initial = torch.as_tensor(bias_init, dtype=torch.float32).broadcast_to([out_features])
            self.bias = torch.nn.Parameter(initial / lr_multiplier)
        else:
            self.bias = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, in_features] -> [N, out_features], computed in ``x``'s dtype."""
        # the weight gain scales the product, not a copy of the weight
        w = self.weight.to(x.dtype)
        b = self.bias
        if b is None:
            return bias_act(x.matmul(w.t()) * self.weight_gain, act=self.activation)
        b = b.to(x.dtype)
        if self.bias_gain != 1:
            b = b * self.bias_gain
        x = torch.addmm(b.unsqueeze(0), x, w.t(), alpha=self.weight_gain)
        return x if self.activation == "linear" else bias_act(x, act=self.activation)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"activation={self.activation}")


class MappingNetwork(torch.nn.Module):
    """z (and a class) to w: normalise, embed, a stack of lrelu layers, broadcast, truncate.

    Both families' mapping networks: StyleGAN3's is this one with ``num_layers=2`` (its
    default; pass it explicitly), no ``embed_features`` / ``layer_features`` /
    ``activation`` options and always a ``w_avg``.

    Parameters
    ----------
    z_dim : int, latent width (0: no latent)
    c_dim : int, class-label width (0: unconditional)
    w_dim : int, width of w
    num_ws : int or None, how many copies of w to output (None: one, unbroadcast)
    num_layers : int, fully connected layers
    embed_features : int or None, label embedding width (None: ``w_dim``)
    layer_features : int or None, hidden width (None: ``w_dim``)
    activation : str, the hidden layers' activation
    lr_multiplier : float, the layers' learning rate multiplier (their runtime scale)
    w_avg_beta : float or None, training's w average decay; None: no ``w_avg``, no truncation
    freeze_layers, freeze_embed : StyleGAN2's fine-tuning options, accepted and ignored
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, *,
                 num_layers: int = 8, embed_features: int | None = None,
                 layer_features: int | None = None, activation: str = "lrelu",
                 lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.998,
                 freeze_layers: int = 0, freeze_embed: bool = False):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        embed_features = (w_dim if embed_features is None else embed_features) if c_dim else 0
        layer_features = w_dim if layer_features is None else layer_features
        widths = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            setattr(self, f"fc{idx}", FullyConnectedLayer(
                widths[idx], widths[idx + 1], activation=activation,
                lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None = None,
                truncation_psi=1.0, truncation_cutoff: int | None = None) -> torch.Tensor:
        """Map latents (and labels) to per-layer styles.

        Parameters
        ----------
        z : torch.Tensor [shape=(B, z_dim)]
        c : torch.Tensor [shape=(B, c_dim)] or None when ``c_dim`` is 0; one-hot for a class
        truncation_psi : float or torch.Tensor [shape=(B,)], 1: none, 0: the average w
        truncation_cutoff : int or None, truncate only the first this many ws (None: all)

        Returns
        -------
        torch.Tensor [shape=(B, num_ws, w_dim)], float32 ([B, w_dim] if ``num_ws`` is None)
        """
        x = None
        if self.z_dim:
            _check_shape(z, self.z_dim, "z")
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim:
            if c is None:
                raise BadInputError(f"this generator is class-conditional (c_dim="
                                    f"{self.c_dim}); give c, a [batch, {self.c_dim}] label")
            _check_shape(c, self.c_dim, "c")
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = y if x is None else torch.cat([x, y], dim=1)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        return self._truncate(x, truncation_psi, truncation_cutoff)

    def _truncate(self, x, psi, cutoff):
        if not isinstance(psi, (int, float)):  # a tensor, array or list: one psi per sample
            psi = torch.as_tensor(psi)
            if psi.ndim == 0:
                psi = float(psi)
        per_sample = isinstance(psi, torch.Tensor)
        if not per_sample and psi == 1:
            return x
        if not hasattr(self, "w_avg"):
            raise BadInputError("this generator keeps no average w (w_avg_beta=None), so it "
                                "cannot truncate; use truncation_psi=1")
        w_avg = self.w_avg.to(x.dtype)
        if per_sample:  # one psi per sample: [B] against [B, num_ws, w_dim]
            psi = psi.to(device=x.device, dtype=x.dtype).reshape([-1] + [1] * (x.ndim - 1))
        if cutoff is None or x.ndim == 2:
            return w_avg.lerp(x, psi)
        head = w_avg.lerp(x[:, :cutoff], psi)
        return torch.cat([head, x[:, cutoff:]], dim=1)

    def extra_repr(self) -> str:
        return (f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, "
                f"num_ws={self.num_ws}")


def _check_shape(x, width: int, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != width:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise BadInputError(f"{name} must be a [batch, {width}] tensor, not {got}")


class DerivedTensors(torch.nn.Module):
    """A module that keeps what it derives from its parameters on every call (a weight's
    squared norms, a copy in the layout a convolution wants) while they are unchanged.

    :meth:`derived` recomputes when its source was replaced or changed in place through
    itself (``load_state_dict``, ``copy_``, ``fill_``, …: its version counter), and
    whenever gradients could flow into it or a tracer is recording; moving or casting
    the module (``.to()``, ``.half()``) forgets everything. The one change it cannot see
    is writing into ``param.data``, which bypasses the version counter.
    """

    def derived(self, name: str, source: torch.Tensor, make) -> torch.Tensor:
        """``make(source)``, kept under ``name`` while ``source`` is unchanged."""
        if (torch.is_grad_enabled() and source.requires_grad) or torch.jit.is_tracing():
            return make(source)
        cache = self.__dict__.setdefault("_derived", {})
        entry = cache.get(name)
        if entry is not None:
            # the kept source pins its storage, so no new tensor can take its address
            kept, version, value = entry
            if (kept.data_ptr() == source.data_ptr() and version == source._version
                    and kept.shape == source.shape and kept.dtype == source.dtype
                    and kept.device == source.device):
                return value
        value = make(source)
        cache[name] = (source.detach(), source._version, value)
        return value

    def _apply(self, fn, recurse=True):
        self.__dict__.pop("_derived", None)
        return super()._apply(fn, recurse)


def check_styles(ws: torch.Tensor, num_ws: int, w_dim: int, noise_mode: str) -> None:
    """Refuse styles that are not [batch, num_ws, w_dim] and an unknown noise mode."""
    if noise_mode not in NOISE_MODES:
        raise BadInputError(f"unknown noise mode '{noise_mode}'; available: "
                            f"{', '.join(NOISE_MODES)}")
    if ws.ndim != 3 or tuple(ws.shape[1:]) != (num_ws, w_dim):
        raise BadInputError(f"ws must be a [batch, {num_ws}, {w_dim}] tensor, "
                            f"not {tuple(ws.shape)}")


class StyleGenerator(torch.nn.Module):
    """What both families' ``Generator`` share: the sizes, a ``synthesis`` network and the
    ``mapping`` network that feeds it, the config they were built from, and random
    initialisation from a config.

    A subclass sets ``family`` and calls :meth:`_build` from its ``__init__``.
    """

    family = ""  # the config's "family"

    def _build(self, synthesis_cls, *, z_dim: int, c_dim: int, w_dim: int,
               img_resolution: int, img_channels: int, mapping_kwargs: dict,
               synthesis_kwargs: dict, recorded: dict) -> None:
        """Set the sizes, ``synthesis = synthesis_cls(w_dim, img_resolution, img_channels,
        **synthesis_kwargs)`` and a :class:`MappingNetwork` to its ``num_ws``; ``recorded``
        is what :meth:`config` gives back beside the sizes."""
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = synthesis_cls(w_dim, img_resolution, img_channels,
                                       **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, **mapping_kwargs)
        self._kwargs = plain(dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim,
                                  img_resolution=img_resolution, img_channels=img_channels,
                                  mapping_kwargs=mapping_kwargs, **recorded))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi=1.0, *,
                truncation_cutoff: int | None = None, **synthesis) -> torch.Tensor:
        """Pictures from latents: the mapping network, then the synthesis network.

        Parameters
        ----------
        z : torch.Tensor [shape=(B, z_dim)]
        c : torch.Tensor [shape=(B, c_dim)] or None (unconditional)
        truncation_psi : float or torch.Tensor [shape=(B,)]
        truncation_cutoff : see :meth:`MappingNetwork.forward`
        **synthesis : the family's synthesis keywords (``noise_mode``, ``noise_gain``;
            StyleGAN2's ``fused_modconv``, StyleGAN3's ``transform``), see its
            ``SynthesisNetwork.forward``

        Returns
        -------
        torch.Tensor [shape=(B, img_channels, img_resolution, img_resolution)], float32
        """
        ws = self.mapping(z, c, truncation_psi=truncation_psi,
                          truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis)

    def config(self) -> dict:
        """``{"family": ..., "kwargs": {...}}``, plain JSON, what :meth:`from_config` builds
        this architecture from."""
        return {"family": self.family, "kwargs": plain(self._kwargs)}

    @classmethod
    def from_config(cls, config: dict, *, seed: int = 0):
        """A randomly initialised generator of ``config`` (NVIDIA's initialisation: unit
        normal weights, constants and noise, zero noise strength and w average; StyleGAN3's
        filters designed as NVIDIA's), in eval mode and without gradients. The global torch
        random state is left as it was.

        Raises
        ------
        BadInputError
            a config of another family, or an option no module of this one takes
        """
        if not isinstance(config, dict) or config.get("family") != cls.family:
            family = config.get("family") if isinstance(config, dict) else config
            raise BadInputError(f"not a {cls.family} config: family {family!r}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            try:
                model = cls(**config["kwargs"])
            except TypeError as exc:  # an option no module here takes
                raise BadInputError(f"{cls.family} config: {one_line(exc, limit=160)}") from None
        return model.eval().requires_grad_(False)
