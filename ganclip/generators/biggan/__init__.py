"""BigGAN-deep (Brock, Donahue & Simonyan 2019), the generator only, written for ganclip.

The module's ``state_dict()`` keys are exactly those of ``pytorch-pretrained-biggan``
0.1.1 (``embeddings.weight``, ``generator.gen_z.weight_orig``, …), so its published
``pytorch_model.bin`` files load strictly; that package is not needed at run time. Its
computation matches the reference's eval mode: every spectral-normed weight is
``weight_orig / σ`` with ``σ = uᵀ W v`` from the stored ``weight_u``/``weight_v`` (torch's
``spectral_norm`` runs no power iteration in eval mode), and every batch norm uses stored
statistics picked by the truncation.

Two ways to run it:

- :class:`BigGAN`, an ``nn.Module`` that reads like the paper and keeps the published layout;
- :class:`FastBigGAN`, built from it at load for inference: spectral norms folded into plain
  weights; each conditional batch norm one per-sample per-channel affine computed once per
  batch (the preceding conv's bias folded into its mean); an upsample followed by a 3×3 conv
  done as one stride-2 transposed conv (2.25× fewer multiply-adds); only the 3 used channels
  of ``conv_to_rgb``; channels-last tensors; fp32, bf16 or fp16. On CPUs, weights packed
  once for oneDNN; a batch shares the weight-heavy low-resolution layers and goes through the
  high-resolution ones sample by sample, several side by side on their share of the cores,
  where each norm and ReLU fold into the conv before it; the last block's output meets the
  last norm and ``conv_to_rgb`` in cache-sized bands of rows. Same output as the module to
  ~1e-4 in fp32; how much faster is measured by ``benchmarks/generators.py`` (README).

:class:`BigGANGenerator` wraps both in ganclip's generator protocol; :func:`load_biggan`
builds one from a weights folder. The package, in reading order: ``config`` (the published
settings), ``model`` (the module), ``ops`` (the fast path's convolutions and fused pieces),
``fast`` (the fast path), ``randomweights`` (random weights and inputs for tests, benchmarks
and the probe), ``load`` (files, the protocol, the precision ``auto`` picks).

Names are re-exported here for reading and calling; a tunable or a function is patched on the
module that reads it (``ganclip.generators.biggan.fast.TAIL_WORKERS``, ``….ops._packed_ops``).
"""

from ganclip.generators.biggan.config import (BIGGAN_DEEP_128, BIGGAN_DEEP_256, BIGGAN_DEEP_512,
                                              CONFIGS, BigGANConfig)
from ganclip.generators.biggan.fast import DTYPES, FastBigGAN, keep_freed_memory
from ganclip.generators.biggan.load import (MIN_PSNR_DB, BigGANGenerator, build_biggan,
                                            load_biggan, precision_psnr, psnr, to_uint8)
from ganclip.generators.biggan.model import (BASE_GRID, BatchNorm, BigGAN, ConditionalBatchNorm,
                                             GenBlock, SelfAttention, SNConv2d, SNLinear,
                                             extend_grid, grid_for, truncation_weights)
from ganclip.generators.biggan.randomweights import random_inputs, random_state_dict

# private names kept importable from the package: the checks BigGANGenerator runs, and the
# fast path's switches that tests read
from ganclip.generators.biggan.load import _check_device, _check_precision  # noqa: F401
from ganclip.generators.biggan.ops import _affine_relu, _packed_ops  # noqa: F401

__all__ = ["BASE_GRID", "extend_grid", "grid_for", "BIGGAN_DEEP_128", "BIGGAN_DEEP_256", "BIGGAN_DEEP_512", "CONFIGS", "DTYPES",
           "MIN_PSNR_DB", "BatchNorm", "BigGAN", "BigGANConfig", "BigGANGenerator",
           "ConditionalBatchNorm", "FastBigGAN", "GenBlock", "SNConv2d", "SNLinear",
           "SelfAttention", "build_biggan", "keep_freed_memory", "load_biggan", "precision_psnr",
           "psnr", "random_inputs", "random_state_dict", "to_uint8", "truncation_weights"]
