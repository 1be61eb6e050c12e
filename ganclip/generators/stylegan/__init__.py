"""StyleGAN2, StyleGAN2-ADA and StyleGAN3 (configs T and R), written for ganclip.

NVIDIA's training snapshots load as they are (``G_ema``), read as data by
:mod:`~ganclip.generators.stylegan.snapshot` (the Python source they embed is never run),
or from a ``.safetensors`` file with its JSON config (:mod:`…stylegan.formats`). The
package, in reading order: ``snapshot`` (the safe reader), ``ops`` (FIR resampling),
``layers`` (what both families share: fully connected layers, the mapping network, the
generator's shell), ``stylegan2_ops`` and ``stylegan2``, ``stylegan3_ops`` (filter design,
the filtered leaky ReLU) and ``stylegan3``, ``formats`` (safetensors, conversion), and
``generator`` (ganclip's generator protocol: looks in W, the music in the style layers).
"""
