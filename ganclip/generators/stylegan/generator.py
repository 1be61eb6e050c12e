"""StyleGAN with ganclip's generator protocol: looks in W, audio to the style layers.

Each frame's ``w`` starts from its look (the plan's anchors mixed as the image types are,
so a transition is a straight line in W) and moves with the music, layer group by layer
group, as Brouwer's audio-reactive StyleGAN interpolations do:

- the **coarse** layers (layout, pose) reach toward the plan's moving path ``mapping(z)``
  (its drift, and the push of every hit) by :data:`COARSE_REACH` × the bass and hits;
- the **middle** layers reach toward it by :data:`MIDDLE_REACH` × the harmonic loudness;
- the **fine** layers (texture, colour) reach by :data:`FINE_REACH` × the highs toward a
  blend of 12 fixed texture anchors, one per pitch class, weighted by the chroma;
- StyleGAN2's **noise** inputs swell with the onsets (:data:`NOISE_REST`, :data:`NOISE_HIT`).

The drives are the plan's (:data:`ganclip.plan.DRIVE`, knobs ``--structure``, ``--motion``,
``--texture``, ``--noise`` already applied). Then the truncation: ``w_avg + ψ (w - w_avg)``.
StyleGAN3 renders the camera itself: rotation, translation and zoom go through its input's
transform, so the network draws the motion instead of a warp of the finished frame.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ganclip.errors import BadInputError
from ganclip.generators import check_device, check_precision
from ganclip.generators.common import auto_precision, to_uint8

log = logging.getLogger(__name__)

LAYER_SPLIT = (0.3, 0.6)  # fractions of the ws: coarse before the first, fine from the second
COARSE_REACH = 0.6  # at full structure drive the coarse layers go this far toward the path
MIDDLE_REACH = 0.35  # and the middle ones at full harmonic loudness
FINE_REACH = 0.5  # the fine layers toward the chroma's texture anchors, at full highs
NOISE_REST, NOISE_HIT = 0.5, 1.5  # noise strength between onsets, and added at a full onset
CHROMA_SEEDS = tuple(range(9000, 9012))  # seeds of the 12 pitch classes' texture anchors
DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


def layer_groups(num_ws: int) -> tuple[slice, slice, slice]:
    """The ws of the coarse, middle and fine layers (:data:`LAYER_SPLIT`); at least one each
    where there are three or more ws."""
    a = max(1, round(num_ws * LAYER_SPLIT[0]))
    b = max(a + 1, round(num_ws * LAYER_SPLIT[1]))
    return slice(0, a), slice(a, min(b, num_ws)), slice(min(b, num_ws), num_ws)


class StyleGANGenerator:
    """A StyleGAN2 or StyleGAN3 network with ganclip's generator protocol.

    Parameters
    ----------
    net : a generator of :mod:`…stylegan.stylegan2` or :mod:`…stylegan.stylegan3`
    name : str, the ``--model`` it was given as
    size : (width, height) of the video; StyleGAN3 (``camera``) returns frames of this
        shape, StyleGAN2 its native square (the render warps and scales it)
    device, precision : where and in what it runs ("auto": fp32 on CPUs, fp16 on CUDA when
        it passes the PSNR probe)
    """

    def __init__(self, net, *, name: str, size=(256, 256), device="cpu",
                 precision: str = "auto"):
        self.device = torch.device(check_device(device))
        self.net = net.eval().requires_grad_(False).to(self.device)
        self.name = name
        self.dim_z, self.n_classes = net.z_dim, net.c_dim
        self.num_ws, self.w_dim = net.num_ws, net.w_dim
        self.camera = hasattr(net.synthesis, "input")  # StyleGAN3's Fourier-feature input
        side = net.img_resolution
        self.video_size = tuple(size)
        self.size = self.video_size if self.camera else (side, side)
        self.groups = layer_groups(self.num_ws)
        self._chroma = None
        if precision == "auto":
            precision = auto_precision(self._probe, self.device, model=name)
        self.precision = check_precision(precision, accepted=tuple(DTYPES),
                                         device=str(self.device), model=name)

    # -- W ------------------------------------------------------------------------------------

    @torch.no_grad()
    def map(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The mapping network at ψ 1: np.ndarray [shape=(B, num_ws, w_dim)], float32."""
        z, y = self._inputs(z, y)
        return self.net.mapping(z, y, truncation_psi=1.0).float().cpu().numpy()

    def _inputs(self, z, y):
        z = np.asarray(z, np.float32)
        y = np.asarray(y, np.float32).reshape(len(z), -1)
        if z.ndim != 2 or z.shape[1] != self.dim_z or y.shape[1] != self.n_classes:
            raise BadInputError(f"{self.name}: expected z [B, {self.dim_z}] and y "
                                f"[B, {self.n_classes}], got {z.shape} and {y.shape}")
        return (torch.from_numpy(z).to(self.device), torch.from_numpy(y).to(self.device))

    def _chroma_anchors(self) -> torch.Tensor:
        """The 12 pitch classes' texture anchors in W: [12, w_dim] (cached)."""
        if self._chroma is None:
            from ganclip.looks import seed_latents

            y = np.zeros((12, self.n_classes), np.float32)
            if self.n_classes:
                y[np.arange(12), np.arange(12) % self.n_classes] = 1
            w = self.map(seed_latents(CHROMA_SEEDS, self.dim_z), y)[:, 0]
            self._chroma = torch.from_numpy(w).to(self.device)
        return self._chroma

    def styles(self, z, y, truncation, *, looks=None, drive=None) -> torch.Tensor:
        """Each frame's ws, the music applied (see the module): [B, num_ws, w_dim]."""
        z, y = self._inputs(z, y)
        with torch.no_grad():
            path = self.net.mapping(z, y, truncation_psi=1.0).float()
            if looks is not None and np.shape(looks)[1:] != (self.num_ws, self.w_dim):
                raise BadInputError(f"the plan's looks are {list(np.shape(looks)[1:])} in W, "
                                    f"but {self.name} has {self.num_ws} ws of {self.w_dim}; "
                                    "make the plan again for this model (--plan-out)")
            w = path.clone() if looks is None else \
                torch.as_tensor(np.asarray(looks, np.float32), device=self.device).clone()
            if drive is not None:
                d = torch.as_tensor(np.asarray(drive, np.float32), device=self.device)
                coarse, middle, fine = self.groups
                reach = ((coarse, COARSE_REACH * d[:, 0]), (middle, MIDDLE_REACH * d[:, 1]))
                for group, amount in reach:
                    w[:, group] += amount[:, None, None] * (path[:, group] - w[:, group])
                texture = d[:, 4:16] @ self._chroma_anchors()  # [B, w_dim]
                w[:, fine] += (FINE_REACH * d[:, 2])[:, None, None] * (
                    texture[:, None] - w[:, fine])
            psi = torch.as_tensor(np.asarray(truncation, np.float32), device=self.device)
            w_avg = self.net.mapping.w_avg.float()
            return w_avg + psi.reshape(-1, 1, 1) * (w - w_avg)

    # -- drawing ------------------------------------------------------------------------------

    def __call__(self, z, y, truncation, *, looks=None, drive=None, camera=None,
                 palette=None, symmetry=None) -> np.ndarray:
        """Draw a batch of frames (the protocol's; ``palette`` and ``symmetry`` are cppn's
        and not used).

        Parameters
        ----------
        z : np.ndarray [shape=(B, dim_z)]; y : np.ndarray [shape=(B, n_classes)]
        truncation : np.ndarray [shape=(B,)], ψ in (0, 1]
        looks : np.ndarray [shape=(B, num_ws, w_dim)] or None, each frame's anchor in W
            (None: the path ``mapping(z)`` itself)
        drive : np.ndarray [shape=(B, len(DRIVE))] or None (classic plans: no style drive)
        camera : np.ndarray [shape=(B, 5)] or None, StyleGAN3 only (zoom, angle, shift x,
            shift y, flash)

        Returns
        -------
        frames : np.ndarray [shape=(B, H, W, 3)], uint8 (``self.size``)
        """
        t = np.asarray(truncation, np.float64).reshape(-1)
        if not np.all((t > 0) & (t <= 1)):
            raise BadInputError(f"{self.name}: truncation must be in (0, 1]")
        ws = self.styles(z, y, t, looks=looks, drive=drive)
        noise = None
        if drive is not None:
            onset = torch.as_tensor(np.asarray(drive, np.float32)[:, 3], device=self.device)
            noise = NOISE_REST + NOISE_HIT * onset
        return self._draw(ws, noise=noise, camera=camera)

    @torch.no_grad()
    def _draw(self, ws: torch.Tensor, *, noise=None, camera=None, precision=None) -> np.ndarray:
        dtype = DTYPES[precision or self.precision]
        net = self.net if dtype == torch.float32 else self._half()
        extra = {}
        if self.camera and camera is not None:
            from ganclip.generators.stylegan.stylegan3 import user_transform

            # the plan's camera is in half frame heights, y up (ganclip.camera); the input's
            # grid spans -0.5..0.5 of the square, y down, so the turn flips; the square is
            # scaled to cover the frame, whose height is h / max(w, h) of the square's side
            w, h = self.video_size
            unit = h / max(w, h) / 2
            cam = np.asarray(camera, np.float64)
            extra["transform"] = torch.as_tensor(
                user_transform(-cam[:, 1], cam[:, 2] * unit, -cam[:, 3] * unit, zoom=cam[:, 0]),
                dtype=torch.float32, device=self.device)
        images = net.synthesis(ws.to(dtype), noise_mode="const", noise_gain=noise, **extra)
        frames = to_uint8(images)
        if self.camera:
            from ganclip.camera import warp

            flash = np.zeros((len(frames), 5), np.float32)
            flash[:, 0] = 1
            if camera is not None:
                flash[:, 4] = np.asarray(camera, np.float32)[:, 4]
            frames = warp(frames, flash, self.video_size)  # the flash, and the frame's shape
        return frames

    def _half(self):
        if not hasattr(self, "_fp16"):
            import copy

            self._fp16 = copy.deepcopy(self.net).half()
        return self._fp16

    def _probe(self, precision: str) -> np.ndarray:
        """uint8 frames of a fixed probe batch at ``precision`` (for ``auto``)."""
        rng = np.random.default_rng(0)
        z = rng.standard_normal((2, self.dim_z)).astype(np.float32)
        y = np.zeros((2, self.n_classes), np.float32)
        if self.n_classes:
            y[:, 0] = 1
        return self._draw(self.styles(z, y, np.full(2, 0.7)), precision=precision)
