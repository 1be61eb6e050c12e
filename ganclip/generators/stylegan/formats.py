"""StyleGAN files: NVIDIA's snapshots (``.pkl``, read as data) and ganclip's own
``.safetensors`` (the tensors plus the architecture as JSON in the header), conversion
between them, and the published full-size configs for benchmarks.

A ``.safetensors`` file written here holds the generator's ``state_dict`` under NVIDIA's
names and one metadata key, ``"ganclip"``: ``{"format_version": 1, "config": {"family":
…, "kwargs": {…}}}``. Loading one needs no pickle at all.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from ganclip.errors import BadInputError, GanclipError, WeightsError, lookup, one_line
from ganclip.files import atomic_path
from ganclip.generators.stylegan.snapshot import (Persistent, SnapshotError, read_snapshot,
                                                  tensor_problems)

METADATA_KEY = "ganclip"  # the one safetensors metadata entry ganclip writes
FORMAT_VERSION = 1  # of that entry; a newer one is refused rather than misread
FAMILIES = {"stylegan2": "ganclip.generators.stylegan.stylegan2",
            "stylegan3": "ganclip.generators.stylegan.stylegan3"}
SUFFIXES = (".pkl", ".safetensors")
NOT_OURS_HELP = ("give a StyleGAN .pkl snapshot or a file ganclip converted from one; "
                 "BigGAN weights go with --model biggan-deep-N --weights FILE")

# NVIDIA's published architectures (stylegan3's train.py; StyleGAN2 as in its paper configs)
SG2_CHANNEL_BASE = 32768  # from 1024 px up
SG2_CHANNEL_BASE_SMALL = 16384  # below 1024 px
SG2_LARGE = 1024
SG3_CHANNEL_BASE = {"t": 32768, "r": 65536}  # R doubles T's feature maps
SG3_CHANNEL_MAX = {"t": 512, "r": 1024}
SG2_MAPPING_LAYERS = 8
SG3_MAPPING_LAYERS = 2
CHANNEL_MAX = 512
CONV_CLAMP = 256  # what NVIDIA trains its fp16 layers with
NUM_FP16_RES = 4


def _family_module(family: str):
    name = lookup(FAMILIES, family, what="StyleGAN family")
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise WeightsError(f"this ganclip cannot draw {family} yet ({name} is missing)") from None


def family_of(node: Persistent) -> str:
    """'stylegan3' for a tree with a ``SynthesisInput``, 'stylegan2' for one of
    ``SynthesisBlock``s.

    Raises
    ------
    SnapshotError
        neither (naming the generator's top-level classes)
    """
    names = {child.class_name for child in node.walk()}
    if "SynthesisInput" in names:
        return "stylegan3"
    if "SynthesisBlock" in names:
        return "stylegan2"
    raise SnapshotError(f"the generator ({', '.join(sorted(names))}) is neither a StyleGAN2 "
                        "nor a StyleGAN3 one")


def from_persistent(node: Persistent, *, where="the snapshot"):
    """A generator of the right family built from a snapshot's ``G_ema``, tensors loaded
    strictly. ``where`` (the file) is named in errors."""
    try:
        family = family_of(node)
    except SnapshotError as exc:
        raise SnapshotError(f"{where}: {exc}") from None
    return _family_module(family).from_persistent(node, where=where)


def config_of(generator) -> dict:
    """``generator.config()``, checked to be a family this module knows."""
    config = generator.config()
    lookup(FAMILIES, config.get("family"), what="StyleGAN family")
    return config


def save_safetensors(generator, path) -> Path:
    """Write ``generator``'s tensors and config to ``path`` atomically (a crash leaves no
    half file); returns the path."""
    from safetensors.torch import save_file

    path = Path(path)
    header = {"format_version": FORMAT_VERSION, "config": config_of(generator)}
    tensors = {k: v.detach().contiguous().cpu() for k, v in generator.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(header)})
    return path


def read_header(path) -> dict:
    """The config of a ganclip StyleGAN ``.safetensors`` file (``{"family", "kwargs"}``),
    from its header alone: no tensor is read.

    Raises
    ------
    WeightsError
        unreadable, not safetensors, not ganclip's, a newer format or an unknown family
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except FileNotFoundError:
        raise WeightsError(f"{path} does not exist") from None
    except OSError as exc:
        raise WeightsError(f"cannot read {path}: {exc.strerror or one_line(exc)}") from None
    except (SafetensorError, ValueError) as exc:
        raise WeightsError(f"{path} is not a safetensors file ({one_line(exc, limit=80)}); "
                           f"{NOT_OURS_HELP}") from None
    if METADATA_KEY not in metadata:
        raise WeightsError(f"{path} is not a ganclip StyleGAN file (its header has no "
                           f"'{METADATA_KEY}' config); {NOT_OURS_HELP}")
    try:
        header = json.loads(metadata[METADATA_KEY])
        version, config = header["format_version"], header["config"]
        family = config["family"]
        if not isinstance(config["kwargs"], dict):
            raise TypeError("kwargs is not an object")
    except (ValueError, TypeError, KeyError) as exc:
        raise WeightsError(f"{path}: its ganclip config is damaged ({one_line(exc, limit=80)})"
                           "; convert the snapshot again") from None
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise WeightsError(f"{path} was written by a newer ganclip (format {version}; this one "
                           f"reads up to {FORMAT_VERSION}); upgrade ganclip")
    if family not in FAMILIES:
        raise WeightsError(f"{path} holds an unknown StyleGAN family {family!r}; known: "
                           f"{', '.join(FAMILIES)}")
    return config


def load_safetensors(path):
    """The generator in a ganclip ``.safetensors`` file, tensors loaded strictly.

    Raises
    ------
    WeightsError
        see :func:`read_header`; also tensors that are not exactly the config's
    """
    from safetensors.torch import load_file

    path = Path(path)
    config = read_header(path)
    cls = _family_module(config["family"]).Generator
    try:
        generator = cls.from_config(config)
    except (TypeError, ValueError, GanclipError) as exc:
        raise WeightsError(f"{path}: its config does not build a {config['family']} generator "
                           f"({one_line(exc, limit=120)}); convert the snapshot again") from None
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors reports damage as its own error types
        raise WeightsError(f"{path} is truncated or damaged ({one_line(exc, limit=80)}); "
                           "convert the snapshot again") from None
    problems = tensor_problems(generator, tensors)
    if problems:
        raise WeightsError(f"{path}: the file {problems} for the architecture its config "
                           "describes; convert the snapshot again")
    generator.load_state_dict(tensors, strict=True)
    return generator.eval().requires_grad_(False)


def load(path):
    """The generator in a StyleGAN file: an NVIDIA ``.pkl`` snapshot (its ``G_ema``, read as
    data) or a ganclip ``.safetensors``.

    Raises
    ------
    WeightsError
        another suffix, or whatever the reader of that kind refuses (one line, naming the file)
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".pkl":
        return from_persistent(read_snapshot(path), where=path)
    if suffix == ".safetensors":
        return load_safetensors(path)
    raise WeightsError(f"{path} is not a StyleGAN file ganclip reads: expected "
                       f"{' or '.join(SUFFIXES)}")


def convert(src, dst=None) -> Path:
    """Convert an NVIDIA snapshot ``src`` (``.pkl``) to a ganclip ``.safetensors`` ``dst``
    (default: beside it, same name), so later loads need no pickle; returns ``dst``."""
    src = Path(src)
    dst = src.with_suffix(".safetensors") if dst is None else Path(dst)
    if src.suffix.lower() != ".pkl":
        raise WeightsError(f"{src} is not an NVIDIA StyleGAN snapshot (.pkl) to convert")
    if dst.suffix.lower() != ".safetensors":
        raise BadInputError(f"{dst}: the converted file must end in .safetensors")
    return save_safetensors(load(src), dst)


def describe(generator) -> dict:
    """Family and sizes of a generator, for listings and cheap checks."""
    return {"family": config_of(generator)["family"],
            **{k: int(getattr(generator, k)) for k in
               ("z_dim", "w_dim", "c_dim", "img_resolution", "img_channels", "num_ws")}}


def random_config(family: str, resolution: int, *, z_dim: int = 512, w_dim: int = 512,
                  c_dim: int = 0) -> dict:
    """NVIDIA's full-size published architecture as a config (for benchmarks and tests).

    Parameters
    ----------
    family : str, 'stylegan2', 'stylegan3-t' (or 'stylegan3') or 'stylegan3-r'
    resolution : int, the picture's side, a power of two
    z_dim, w_dim, c_dim : int, latent, style and label widths

    Returns
    -------
    dict ``{"family": "stylegan2" | "stylegan3", "kwargs": {...}}``; the StyleGAN3 kwargs
    are laid out as NVIDIA's ``networks_stylegan3.Generator`` takes them (``mapping_kwargs``
    nested, the synthesis keywords flat)
    """
    if resolution < 4 or resolution & (resolution - 1):
        raise BadInputError(f"a StyleGAN resolution is a power of two from 4 up, not {resolution}")
    common = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=resolution,
                  img_channels=3)
    if family == "stylegan2":
        base = SG2_CHANNEL_BASE if resolution >= SG2_LARGE else SG2_CHANNEL_BASE_SMALL
        synthesis = dict(channel_base=base,
                         channel_max=CHANNEL_MAX, num_fp16_res=NUM_FP16_RES,
                         conv_clamp=CONV_CLAMP)
        return {"family": "stylegan2", "kwargs": {
            **common, "mapping_kwargs": {"num_layers": SG2_MAPPING_LAYERS},
            "synthesis_kwargs": synthesis}}
    variants = {"stylegan3": "t", "stylegan3-t": "t", "stylegan3-r": "r"}
    variant = lookup(variants, family, what="StyleGAN config",
                     choices=["stylegan2", "stylegan3-t", "stylegan3-r"])
    kwargs = {**common, "mapping_kwargs": {"num_layers": SG3_MAPPING_LAYERS},
              "channel_base": SG3_CHANNEL_BASE[variant], "channel_max": SG3_CHANNEL_MAX[variant]}
    if variant == "r":  # 1x1 convolutions and radially symmetric filters
        kwargs.update(conv_kernel=1, use_radial_filters=True)
    return {"family": "stylegan3", "kwargs": kwargs}
