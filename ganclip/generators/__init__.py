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


def _cppn(*, size: int, seed: int, device: str, **_):
    from ganclip.generators.cppn import CPPN

    return CPPN(size=size, seed=seed, device=device)


# name -> (factory, one-line description); BigGAN joins this list with its weights.
REGISTRY = {
    "cppn": (_cppn, "built-in pattern network; no download, draws at any size"),
}


def available_models() -> list[str]:
    """Names ``--model`` accepts, ``auto`` first."""
    return ["auto", *REGISTRY]


def resolve_model(name: str) -> tuple[str, str | None]:
    """Turn ``auto`` into a concrete model name, with a notice saying why.

    Returns
    -------
    name : str, a key of :data:`REGISTRY`
    notice : str or None, one line for the user when ``auto`` chose
    """
    if name == "auto":
        return "cppn", ("model auto: no BigGAN weights are cached, "
                        "using the built-in 'cppn' generator")
    if name not in REGISTRY:
        raise BadInputError(f"unknown model '{name}' (--model); available: "
                            f"{', '.join(available_models())}")
    return name, None


def load_generator(name: str = "auto", *, size: int = 256, seed: int = 0,
                   device: str = "cpu") -> Generator:
    """Build a generator by name.

    Parameters
    ----------
    name : str, a name from :func:`available_models`
    size : int, the side wanted; resolution-free generators draw at it natively
    seed : int, fixes random weights
    device : str, torch device
    """
    name, notice = resolve_model(name)
    if notice:
        log.info(notice)
    factory, _ = REGISTRY[name]
    return factory(size=size, seed=seed, device=device)
