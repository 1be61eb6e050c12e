"""The built-in generators' specs: cheap to import, the models themselves load on demand."""

from __future__ import annotations

import logging
from pathlib import Path

from ganclip.generators import GeneratorSpec

log = logging.getLogger(__name__)

BIGGAN_SIDES = (128, 256, 512)  # the published BigGAN-deep checkpoints


def _load_cppn(weights, *, size: int, seed: int, device: str, precision: str, quiet: bool):
    from ganclip.generators.cppn import CPPN

    return CPPN(size=size, seed=seed, device=device)


CPPN_SPEC = GeneratorSpec(
    name="cppn", description="built-in pattern network; no download, draws at any size",
    dim_z=128, n_classes=1000, native_size=None, precisions=("fp32",), load=_load_cppn,
    camera=True)


def _biggan(side: int) -> GeneratorSpec:
    name = f"biggan-deep-{side}"

    def prepare(weights=None, *, download: bool = True, quiet: bool = True):
        from ganclip import weights as weights_io

        if weights is None and not download:
            found = weights_io.cached_path(name)
            return None if found is None else weights_io.resolve_weights(name)
        return weights_io.resolve_weights(name, weights, download=download, quiet=quiet)

    def load(checkpoint, *, size, seed: int, device: str, precision: str, quiet: bool,
             fit: str = "extend"):
        from ganclip.generators.biggan import load_biggan, grid_for

        log.info("%s: loading %s (%s)", name, checkpoint, precision)
        grid = grid_for(size) if fit == "extend" else (4, 4)
        return load_biggan(checkpoint, device=device, precision=precision, grid=grid)

    def status() -> str:
        from ganclip import weights as weights_io

        info = weights_io.model_info(name)
        return "cached" if info.cached else f"not cached, {info.size_mb:.0f} MB to download"

    def ready(weights=None) -> bool:
        from ganclip import weights as weights_io

        return weights is not None or weights_io.is_cached(name)

    return GeneratorSpec(
        name=name, description=f"BigGAN-deep, {side}x{side}; needs its weights (download or "
        "--weights)", dim_z=128, n_classes=1000, native_size=side,
        precisions=("fp32", "bf16", "fp16"), load=load, prepare=prepare, status=status,
        ready=ready, family="BigGAN", extends=True)


SPECS = (CPPN_SPEC, *(_biggan(side) for side in BIGGAN_SIDES))


def stylegan_spec(path) -> GeneratorSpec:
    """The spec of a StyleGAN2/3 model file (``--model PATH``): an NVIDIA snapshot ``.pkl``
    (read as data, :mod:`ganclip.generators.stylegan.snapshot`) or a ganclip
    ``.safetensors``. The network is read here, once, so a bad file is reported before the
    analysis and its latent width is known to the plan."""
    from ganclip.generators.stylegan.formats import describe, load

    net = load(path)
    about = describe(net)
    kind = "StyleGAN3" if about["family"] == "stylegan3" else "StyleGAN2"
    side = about["img_resolution"]

    def build(weights, *, size, seed: int, device: str, precision: str, quiet: bool):
        from ganclip.generators.stylegan.generator import StyleGANGenerator

        log.info("%s: %s, %dx%d, z %d, w %d, %d classes", path, kind, side, side,
                 about["z_dim"], about["w_dim"], about["c_dim"])
        return StyleGANGenerator(net, name=str(path), size=size, device=device,
                                 precision=precision)

    return GeneratorSpec(
        name=str(path), description=f"{kind}, {side}x{side}, from {path}",
        dim_z=about["z_dim"], n_classes=about["c_dim"], native_size=side,
        precisions=("fp32", "fp16"), load=build,
        prepare=lambda weights=None, *, download=True, quiet=True: Path(path),
        family=kind, camera=about["family"] == "stylegan3", looks=True)
