"""Random BigGAN-deep weights that keep activations in a sane range, and random inputs like a
plan's: a tiny random model draws in milliseconds, for tests, benchmarks and the precision
probe."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ganclip.generators.biggan.config import BigGANConfig
from ganclip.generators.biggan.model import BatchNorm, BigGAN, ConditionalBatchNorm, SNLinear


def random_state_dict(config: BigGANConfig, *, seed: int = 0, batch: int = 4) -> dict:
    """Random weights in the published layout that keep activations in a sane range.

    Random ``weight_u``/``weight_v`` would make ``σ = uᵀ W v`` tiny and blow activations up,
    so ``u, v`` are run to the top singular vectors (power iteration); each batch norm's stored
    statistics are measured on a batch of random inputs at truncations 0.25, 0.6 and 1 (the
    way BigGAN's own "standing statistics" are) and interpolated across the ``n_stats`` rows.
    For tests and benchmarks: a tiny random model draws in milliseconds.
    """
    gen = torch.Generator().manual_seed(seed)
    model = BigGAN(config)
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if name.endswith(("weight_orig", "weight_u", "weight_v")):
                p.copy_(torch.randn(p.shape, generator=gen))
            elif name == "embeddings.weight":  # class embeddings about as large as the noise
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
            elif name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
            elif name.endswith("gamma"):  # 0 at init would switch attention off
                p.fill_(0.5)
        for m in model.modules():
            if isinstance(m, SNLinear):
                w = m.weight_orig.reshape(len(m.weight_orig), -1)
                u = F.normalize(m.weight_u, dim=0)
                for _ in range(30):
                    v = F.normalize(w.T @ u, dim=0)
                    u = F.normalize(w @ v, dim=0)
                m.weight_u.copy_(u), m.weight_v.copy_(v)
        _calibrate(model, gen, batch)
    return model.state_dict()


def _calibrate(model: BigGAN, gen: torch.Generator, batch: int,
               levels=(0.25, 0.6, 1.0)) -> None:
    """Set every batch norm's stored statistics from a batch's, at a few truncations."""
    norms = [m for m in model.modules() if isinstance(m, (ConditionalBatchNorm, BatchNorm))]
    measured = {id(m): [] for m in norms}

    def measure(module, args):  # before each norm runs: make it normalise with batch stats
        x = args[0]
        mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False)
        module.running_means[:] = mean
        module.running_vars[:] = var
        measured[id(module)].append((mean, var))

    hooks = [m.register_forward_pre_hook(measure) for m in norms]
    try:
        for level in levels:
            noise, y = random_inputs(batch, seed=int(torch.randint(1 << 30, (1,), generator=gen)),
                                     n_classes=model.config.num_classes, dim_z=model.config.z_dim)
            model(torch.as_tensor(noise * level), torch.as_tensor(y), level)
    finally:
        for h in hooks:
            h.remove()
    grid = np.linspace(0, 1, model.config.n_stats)
    # row j = linear interpolation of the measured levels at truncation j / (n_stats - 1)
    mix = torch.as_tensor(np.stack([np.interp(grid, levels, np.eye(len(levels))[k])
                                    for k in range(len(levels))], 1), dtype=torch.float32)
    for m in norms:
        for k, buffer in enumerate((m.running_means, m.running_vars)):
            buffer.copy_(mix @ torch.stack([pair[k] for pair in measured[id(m)]]))


def random_inputs(batch: int, *, seed: int = 0, n_classes: int = 1000, dim_z: int = 128):
    """A unit latent in [-2, 2] (clipped normal) and two-class mixes, like a ganclip plan's.

    Returns
    -------
    z : np.ndarray [shape=(batch, dim_z)], float32
    y : np.ndarray [shape=(batch, n_classes)], float32, rows summing to 1
    """
    rng = np.random.default_rng(seed)
    z = np.clip(rng.standard_normal((batch, dim_z)), -2, 2).astype(np.float32)
    y = np.zeros((batch, n_classes), np.float32)
    for row in y:
        row[rng.choice(n_classes, 2, replace=False)] = (0.7, 0.3)
    return z, y
