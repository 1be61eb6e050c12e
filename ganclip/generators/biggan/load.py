"""Loading BigGAN-deep: weights files read safely and strictly, the generator protocol, and
the precision ``auto`` picks (by the fp16-against-fp32 probe, :func:`precision_psnr`)."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import torch

from ganclip.errors import BadInputError, WeightsError, one_line
from ganclip.generators import check_device, check_precision
from ganclip.generators.common import MIN_PSNR_DB, auto_precision, psnr, to_uint8
from ganclip.generators.biggan.config import BigGANConfig
from ganclip.generators.biggan.fast import DTYPES, FastBigGAN
from ganclip.generators.biggan.model import BASE_GRID, BigGAN
from ganclip.generators.biggan.randomweights import random_inputs, random_state_dict
from ganclip.weights import CHECKPOINTS, CONFIG

log = logging.getLogger(__name__)



# ---------------------------------------------------------------------------------------------
# the generator protocol


class BigGANGenerator:
    """BigGAN-deep with ganclip's generator protocol.

    Parameters
    ----------
    model : BigGAN, with its weights loaded (kept as the readable reference path)
    device : str or torch.device, where the fast path runs
    precision : {"auto", "fp32", "bf16", "fp16"}, of the fast path (see :func:`load_biggan`)
    """

    def __init__(self, model: BigGAN, *, device="cpu", precision: str = "fp32",
                 grid: tuple[int, int] = (BASE_GRID, BASE_GRID)):
        cfg = model.config
        self.model = model.eval()
        self.config = cfg
        self.name = f"biggan-deep-{cfg.output_dim}"
        self.dim_z, self.n_classes = cfg.z_dim, cfg.num_classes
        rows, cols = grid
        self.size = (cfg.output_dim * cols // BASE_GRID, cfg.output_dim * rows // BASE_GRID)
        self.device = _check_device(device)
        if precision == "auto":
            precision = _auto_precision(model, self.device)
        self.precision = _check_precision(precision, self.device)
        self.fast = FastBigGAN(model, device=self.device, dtype=DTYPES[self.precision],
                               grid=grid)

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
        frames : np.ndarray [shape=(B, height, width, 3)], uint8 RGB (``self.size``)
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
    """``device`` as a torch device, checked by the registry's one device check."""
    return torch.device(check_device(device))


def _check_precision(precision: str, device: torch.device) -> str:
    """A concrete precision BigGAN-deep runs on ``device``: the registry's one check."""
    if precision == "auto":
        raise BadInputError("unknown precision 'auto' here: resolve it first "
                            "(load_biggan does)")
    return check_precision(precision, accepted=tuple(DTYPES), device=str(device),
                           model="BigGAN-deep")


def _auto_precision(model: BigGAN, device: torch.device) -> str:
    """fp32 on CPUs; on CUDA fp16 when it draws within :data:`MIN_PSNR_DB` of fp32 on a probe
    (:func:`~ganclip.generators.common.auto_precision`).

    bf16 is never picked: with 3 fewer mantissa bits than fp16 it draws about at the bar, or
    below it at 512² (``benchmarks/generators.py`` prints the PSNR of each), and on CPUs
    without bf16 instructions (AVX512-BF16, AMX) it is emulated, so slower than fp32.
    """
    return auto_precision(lambda p: _probe(model, p, device=device), device,
                          model="BigGAN-deep")


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
        raise WeightsError(f"{path}: not a readable PyTorch weights file "
                           f"({one_line(e, limit=200)})") from None
    except (RuntimeError, OSError, EOFError, ValueError) as e:
        raise WeightsError(f"{path}: not a readable PyTorch weights file "
                           f"({one_line(e, limit=200)})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    return state


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
                config: BigGANConfig | None = None,
                grid: tuple[int, int] = (BASE_GRID, BASE_GRID)) -> BigGANGenerator:
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
    grid : (rows, columns) of the first feature map: (4, 4) as trained, more to paint a
        wide or tall frame (:func:`~ganclip.generators.biggan.model.grid_for`)

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
    return BigGANGenerator(model, device=device, precision=precision, grid=grid)


# ---------------------------------------------------------------------------------------------
# the precision check


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
    return psnr(*(_probe(model, p, device=device, batch=batch, truncation=truncation,
                         seed=seed) for p in ("fp32", _check_precision(precision, device))))


def _probe(model: BigGAN, precision: str, *, device, batch: int = 2, truncation: float = 0.5,
           seed: int = 0) -> np.ndarray:
    """uint8 frames of a fixed random batch drawn by the fast path at ``precision``."""
    z, y = random_inputs(batch, seed=seed, n_classes=model.config.num_classes,
                         dim_z=model.config.z_dim)
    fast = FastBigGAN(model, device=torch.device(device), dtype=DTYPES[precision])
    return to_uint8(fast(z * truncation, y, np.full(batch, truncation)))
