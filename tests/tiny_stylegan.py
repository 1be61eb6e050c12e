"""Tiny random StyleGAN2 and StyleGAN3 generators written as ganclip .safetensors files, for
end-to-end renders in seconds without NVIDIA's snapshots."""

from pathlib import Path

import torch

from ganclip.generators.stylegan import formats, stylegan2, stylegan3

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "stylegan"


def tiny(family: str, path, *, c_dim: int = 0, z_dim: int = 24, w_dim: int = 16,
         noise: float = 0.5, seed: int = 0) -> Path:
    """Write a random 32² ``family`` ("stylegan2" or "stylegan3-t"/"-r") net to ``path``;
    StyleGAN2's noise strengths set to ``noise`` (random nets have none)."""
    config = formats.random_config(family, 32, z_dim=z_dim, w_dim=w_dim, c_dim=c_dim)
    kwargs = config["kwargs"]
    if config["family"] == "stylegan2":
        kwargs["mapping_kwargs"]["num_layers"] = 2
        kwargs["synthesis_kwargs"].update(channel_base=256, channel_max=16)
        net = stylegan2.Generator.from_config(config, seed=seed)
        with torch.no_grad():
            for name, p in net.named_parameters():
                if name.endswith("noise_strength"):
                    p.fill_(noise)
    else:
        kwargs.update(channel_base=256, channel_max=16)
        net = stylegan3.Generator.from_config(config, seed=seed)
    return formats.save_safetensors(net, Path(path))
