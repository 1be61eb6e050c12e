"""The built-in generator: a compositional pattern-producing network (CPPN).

A random-weight per-pixel MLP on the pixel's coordinates, conditioned on the
latent ``z`` and the 1000-way class vector ``y`` the same way BigGAN is, so the
whole pipeline (image types, transitions, truncation) works without any
download. It is resolution-free: it draws natively at any size.

How the conditioning maps to the picture:

- ``y`` → a *style* through a fixed seeded projection (each ImageNet class owns
  a random 64-d style; a mix of classes mixes styles). The style sets the
  palette, how much each coordinate family (cartesian, radial, angular, fine
  and coarse Fourier features) feeds the network, and each layer's gains:
  that is a type's recognisable look.
- ``z × truncation`` → the layers' biases: phase shifts that make the pattern
  flow. Everything is a smooth function of ``(z, y, truncation)``, so a small
  step in z is a small change in the picture and interpolating class vectors
  morphs one look into another.
"""

from __future__ import annotations

import math

import numpy as np
import torch

STYLE_DIM = 64  # size of a class's style vector
HIDDEN = 32  # units per hidden layer
ACTIVATIONS = ("sin", "tanh", "bump", "tanh")  # one per layer: waves, edges, blobs, edges
FOURIER = 8  # random Fourier frequencies per band (coarse and fine)
SYMMETRY = (3, 4, 5, 6)  # angular frequencies: k-fold rotational motifs
FIELD_SCALE = 2  # the network's field is smooth: draw it at 1/2 side, colour at full size


def _coordinate_groups(size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """Coordinate features of every pixel, in families a style can weight.

    Returns
    -------
    groups : list of torch.Tensor [shape=(size*size, n_features)], float32
    """
    axis = torch.linspace(-1.0, 1.0, size)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    x, y = xx.reshape(-1, 1), yy.reshape(-1, 1)
    r = torch.sqrt(x * x + y * y)
    theta = torch.atan2(y, x)
    cartesian = torch.cat([x, y, x * y], 1)
    radial = torch.cat([r, torch.cos(3.0 * r), torch.sin(5.0 * r)], 1)
    angular = torch.cat([f(k * theta) * r.clamp(max=1.0) for k in SYMMETRY
                         for f in (torch.cos, torch.sin)], 1)
    groups = [cartesian, radial, angular]
    for scale in (2.0, 7.0):  # coarse and fine random Fourier features
        freqs = torch.randn(2, FOURIER, generator=gen) * scale
        proj = torch.cat([x, y], 1) @ freqs
        groups.append(torch.cat([torch.sin(proj), torch.cos(proj)], 1))
    return groups


def _activate(a: torch.Tensor, kind: str) -> torch.Tensor:
    """In-place activation; one kind per layer keeps it a single pass over memory."""
    if kind == "sin":
        return a.sin_()
    if kind == "tanh":
        return a.tanh_()
    # "bump": a Gaussian-like blob 2 / (1 + a²) - 1, in [-1, 1], cheaper than exp
    return a.square_().add_(1.0).reciprocal_().mul_(2.0).sub_(1.0)


class CPPN:
    """Random-weight CPPN generator with BigGAN's interface.

    Parameters
    ----------
    size : int, side in pixels of the square frames it draws
    seed : int, fixes all weights (the same seed always draws the same pictures)
    device : str or torch.device
    """

    name = "cppn"
    dim_z = 128
    n_classes = 1000

    def __init__(self, *, size: int = 256, seed: int = 0, device="cpu"):
        self.size = size
        self.field = max(8, -(-size // FIELD_SCALE))  # side of the network's field
        self.device = torch.device(device)
        gen = torch.Generator().manual_seed(seed)

        def randn(*shape, std=1.0):
            return (torch.randn(*shape, generator=gen) * std).to(self.device)

        layers = len(ACTIVATIONS)
        groups = _coordinate_groups(self.field, gen)
        # The coordinate layer is fixed per size: precompute each family's
        # contribution once; a frame only reweights and activates them.
        self.coords = torch.stack([g.to(self.device) @ randn(g.shape[1], HIDDEN,
                                                              std=1.5 / math.sqrt(g.shape[1]))
                                   for g in groups])  # [G, P, H]
        self.class_style = randn(self.n_classes, STYLE_DIM)  # each class's own style
        self.group_gain = randn(STYLE_DIM, len(groups), std=1.5 / math.sqrt(STYLE_DIM))
        self.layer_gain = randn(layers, STYLE_DIM, HIDDEN, std=0.6 / math.sqrt(STYLE_DIM))
        self.z_bias = randn(layers, self.dim_z, HIDDEN, std=1.0 / math.sqrt(self.dim_z))
        self.style_bias = randn(layers, STYLE_DIM, HIDDEN, std=1.0 / math.sqrt(STYLE_DIM))
        self.weights = randn(layers - 1, HIDDEN, HIDDEN, std=1.3 / math.sqrt(HIDDEN))
        self.out = randn(HIDDEN, 3, std=1.2 / math.sqrt(HIDDEN))
        self.palette = randn(STYLE_DIM, 12, std=1.0 / math.sqrt(STYLE_DIM))

    def styles(self, y: torch.Tensor) -> torch.Tensor:
        """Style of each class vector: the class styles mixed by ``y``, kept at unit scale.

        Dividing by ``|y|₂`` keeps a half-and-half mix as vivid as a pure class.
        """
        norm = y.norm(dim=1, keepdim=True).clamp(min=1e-6)
        return (y @ self.class_style) / norm

    def _colour(self, t: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Inigo Quilez's cosine palette ``a + b cos(2π(c t + d))``, its terms set by the style.

        ``t`` is [B, 3, size, size]: channel 0 indexes the palette, 1 shades, 2 tints.
        """
        p = (style @ self.palette).view(-1, 4, 3, 1, 1)  # [B, term, rgb, 1, 1]
        a = 0.5 + 0.15 * torch.tanh(p[:, 0])
        b = 0.4 + 0.15 * torch.tanh(p[:, 1])
        c = 0.5 + 0.5 * torch.sigmoid(p[:, 2])
        d = p[:, 3]
        rgb = a + b * torch.cos(2 * math.pi * (c * t[:, :1] + d))
        return rgb * (0.8 + 0.2 * torch.tanh(t[:, 1:2])) + 0.06 * torch.tanh(t[:, 2:3])

    @torch.inference_mode()
    def __call__(self, z: np.ndarray, y: np.ndarray, truncation: np.ndarray) -> np.ndarray:
        """Draw a batch of frames.

        Parameters
        ----------
        z : np.ndarray [shape=(B, 128)], latent, roughly in [-2, 2]
        y : np.ndarray [shape=(B, 1000)], class vectors (non-negative weights)
        truncation : np.ndarray [shape=(B,)], in (0, 1]; lower is calmer

        Returns
        -------
        frames : np.ndarray [shape=(B, size, size, 3)], uint8 RGB
        """
        z = torch.as_tensor(np.asarray(z, np.float32), device=self.device)
        y = torch.as_tensor(np.asarray(y, np.float32), device=self.device)
        trunc = torch.as_tensor(np.asarray(truncation, np.float32),
                                device=self.device).view(-1, 1)
        style = self.styles(y)
        zt = z * trunc
        gains = 1.0 + 0.5 * torch.tanh(torch.einsum("bs,lsh->lbh", style, self.layer_gain))
        biases = (torch.einsum("bz,lzh->lbh", zt, self.z_bias)
                  + torch.einsum("bs,lsh->lbh", style, self.style_bias)).unsqueeze(2)

        # Truncation also sets how busy the pattern is: calm frames zoom out.
        mixing = torch.nn.functional.softplus(style @ self.group_gain) * (0.5 + 0.5 * trunc)
        mixing = (mixing.unsqueeze(2) * gains[0].unsqueeze(1)).unsqueeze(2)  # [B, G, 1, H]
        # Σ_g mixing[g] · coords[g], FiLM gain folded in; in place, faster than einsum here
        h = biases[0].expand(len(z), self.coords.shape[1], HIDDEN).clone()
        for g, coords in enumerate(self.coords):
            h.addcmul_(coords, mixing[:, g])
        h = _activate(h, ACTIVATIONS[0])
        for layer, kind in enumerate(ACTIVATIONS[1:], start=1):
            # (h @ W) * gain + bias as one batched matmul, the gain folded into W
            w = self.weights[layer - 1] * gains[layer].unsqueeze(1)  # [B, H, H]
            h = _activate(torch.baddbmm(biases[layer], h, w), kind)
        field = (h @ self.out).transpose(1, 2).reshape(-1, 3, self.field, self.field)
        if self.field != self.size:
            field = torch.nn.functional.interpolate(field, size=(self.size, self.size),
                                                    mode="bilinear", align_corners=False)
        rgb = self._colour(field, style).clamp_(0.0, 1.0).mul_(255.0).add_(0.5)
        return rgb.to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
