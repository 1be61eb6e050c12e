"""Generators: each maps ``(z [B, dim_z], y [B, n_classes], truncation [B])`` to frames.

Every generator has ``name``, ``dim_z``, ``n_classes``, ``size`` (its native
side in pixels) and ``__call__(z, y, truncation) -> uint8 [B, H, W, 3]``.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from ganclip.errors import BadInputError

log = logging.getLogger(__name__)


class Generator(Protocol):
    name: str
    dim_z: int
    n_classes: int
    size: int  # native side in pixels

    def __call__(self, z: np.ndarray, y: np.ndarray,
                 truncation: np.ndarray) -> np.ndarray: ...


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
AUTO_BIGGAN = "biggan-deep-256"  # what --model auto uses when its weights are cached


def _cppn(*, size: int, seed: int, device: str, **_):
    from ganclip.generators.cppn import CPPN

    return CPPN(size=size, seed=seed, device=device)


def _biggan(name: str):
    def factory(*, device: str, weights=None, precision: str = "auto", quiet: bool = True, **_):
        from ganclip import weights as weights_io
        from ganclip.generators.biggan import load_biggan

        checkpoint = weights_io.resolve_weights(name, weights, download=True, quiet=quiet)
        log.info("%s: loading %s (%s)", name, checkpoint, precision)
        return load_biggan(checkpoint, device=device, precision=precision)

    return factory


# name -> (factory, one-line description)
REGISTRY = {
    "cppn": (_cppn, "built-in pattern network; no download, draws at any size"),
    **{f"biggan-deep-{side}": (_biggan(f"biggan-deep-{side}"),
                               f"BigGAN-deep, {side}x{side}; needs its weights (download or --weights)")
       for side in (128, 256, 512)},
}


def available_models() -> list[str]:
    """Names ``--model`` accepts, ``auto`` first."""
    return ["auto", *REGISTRY]


def resolve_model(name: str, *, weights=None) -> tuple[str, str | None]:
    """Turn ``auto`` into a concrete model name, with a notice saying why.

    ``auto`` is BigGAN-deep 256 when its weights are cached (or given with
    ``weights``), else the built-in ``cppn``.

    Returns
    -------
    name : str, a key of :data:`REGISTRY`
    notice : str or None, one line for the user when ``auto`` chose
    """
    if name == "auto":
        from ganclip import weights as weights_io

        if weights is not None:
            return AUTO_BIGGAN, f"model auto: using {AUTO_BIGGAN} with the weights in {weights}"
        if weights_io.is_cached(AUTO_BIGGAN):
            return AUTO_BIGGAN, (f"model auto: using {AUTO_BIGGAN} from "
                                 f"{weights_io.cached_path(AUTO_BIGGAN)}")
        return "cppn", ("model auto: no BigGAN weights are cached, "
                        "using the built-in 'cppn' generator")
    if name not in REGISTRY:
        raise BadInputError(f"unknown model '{name}' (--model); available: "
                            f"{', '.join(available_models())}")
    return name, None


def load_generator(name: str = "auto", *, size: int = 256, seed: int = 0, device: str = "cpu",
                   weights=None, precision: str = "auto", quiet: bool = True) -> Generator:
    """Build a generator by name.

    Parameters
    ----------
    name : str, a name from :func:`available_models`
    size : int, the side wanted; resolution-free generators draw at it natively,
        the others at their own size (the video is resized)
    seed : int, fixes random weights
    device : str, torch device
    weights : path or None, local weights for a BigGAN model (a folder or a file)
    precision : "auto", "fp32", "bf16" or "fp16", the arithmetic of BigGAN
    quiet : bool, no download progress bars
    """
    if precision not in PRECISIONS:
        raise BadInputError(f"unknown precision '{precision}' (--precision); available: "
                            f"{', '.join(PRECISIONS)}")
    name, notice = resolve_model(name, weights=weights)
    if notice:
        log.info(notice)
    factory, _ = REGISTRY[name]
    return factory(size=size, seed=seed, device=device, weights=weights, precision=precision,
                   quiet=quiet)
