"""The built-in generator: a compositional pattern-producing network (CPPN).

A random-weight per-pixel MLP on the pixel's coordinates, conditioned on the
latent ``z`` and the 1000-way class vector ``y`` the same way BigGAN is, so the
whole pipeline (image types, transitions, truncation) works without any
download. It is resolution-free: it draws natively at any size and shape.

How the conditioning maps to the picture:

- ``y`` → a *style* through a fixed seeded projection (each ImageNet class owns
  a random 64-d style; a mix of classes mixes styles). The style sets how much
  each coordinate family (cartesian, radial, angular, coarse, fine and finest
  Fourier features) feeds the network, each layer's gains, how the field is
  terraced into bands and how strongly their edges are inked: a type's look.
- ``z × truncation`` → the layers' biases: phase shifts that make the pattern
  flow. Everything is a smooth function of ``(z, y, truncation)``, so a small
  step in z is a small change in the picture and interpolating class vectors
  morphs one look into another.
- the **palette** (the image type's colours, mixed as the types are) colours the
  field: its first channel runs along the palette's dark-to-light ramp.
- the **camera** (zoom, angle, shift) transforms the coordinates before the
  network sees them: exact, with no resampling and no edges to fill.

Coordinates are in frame heights (``y`` in [-1, 1], ``x`` in ±width/height), so a
circle stays round and a wide frame shows more of the scene, not a stretched one.

Speed at any size: the network's output is smooth, so it is computed on a grid of
at most :data:`FIELD_PIXELS` (the detail it has, not the output's size), scaled up
bilinearly, and coloured by one lookup per pixel in a per-frame table of the palette,
bands, inking and flash (:meth:`CPPN._colour`), at the frame's size up to
:data:`COLOUR_PIXELS` (960×540). A larger frame is coloured at up to half its side and
scaled up by the encoder in the pass that converts it to YUV, where scaling costs next
to nothing.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ganclip.camera import FLASH_LIFT, frame_points, seen

STYLE_DIM = 64  # size of a class's style vector
HIDDEN = 32  # units per hidden layer
ACTIVATIONS = ("sin", "tanh", "bump", "tanh")  # one per layer: waves, edges, blobs, edges
FOURIER = 8  # random Fourier frequencies per band
FOURIER_SCALES = (1.5, 4.0, 9.0)  # coarse, fine and finest bands: layered detail
ANGULAR = (3, 4, 5, 6)  # angular frequencies: k-fold rotational motifs
FIELD_PIXELS = 224 * 126  # most grid points the network is computed on per frame
FIELD_SCALE = 2  # and at least this factor below the output side
COLOUR_PIXELS = 960 * 540  # most pixels coloured per frame; larger frames are scaled up
COLOUR_SCALE = 2.0  # by the encoder (free beside its colour conversion), by at most this
MIN_MIX = 0.35  # every coordinate family feeds every look a little: no flat frames
FIELD_GAIN = 1.4  # one standard deviation of the field spans this much of the ramp's logit
LEVELS = 1024  # entries of the colour table along the palette ramp
SHADES = 16  # entries of the colour table along the shading channel
PIECE = 4096  # pixels the network works on at a time, so its activations stay in cache
BAND_ROWS = 24  # output rows coloured at a time
N_GROUPS = 3 + len(FOURIER_SCALES)


def _pair(size) -> tuple[int, int]:
    return (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))


def colour_shape(width: int, height: int) -> tuple[int, int]:
    """The (width, height) the field is coloured at for a frame of that size: the frame's
    own up to :data:`COLOUR_PIXELS`, above that scaled down (by at most
    :data:`COLOUR_SCALE`) for the encoder to scale up in the pass that converts it to YUV."""
    scale = min(COLOUR_SCALE, max(1.0, math.sqrt(width * height / COLOUR_PIXELS)))
    return max(16, round(width / scale)), max(16, round(height / scale))


def field_shape(width: int, height: int) -> tuple[int, int]:
    """The (width, height) of the grid the network is computed on for a frame of that size:
    :data:`FIELD_SCALE` times smaller, and at most :data:`FIELD_PIXELS` points."""
    scale = max(FIELD_SCALE, math.sqrt(width * height / FIELD_PIXELS))
    return max(8, round(width / scale)), max(8, round(height / scale))


def _bilinear(n_in: int, n_out: int, device) -> tuple[torch.Tensor, torch.Tensor,
                                                      torch.Tensor]:
    """Bilinear scaling from ``n_in`` to ``n_out`` samples with pixel centres aligned
    (``align_corners=False``): each output's two inputs and the second one's weight."""
    where = ((torch.arange(n_out, dtype=torch.float32) + 0.5) * n_in / n_out - 0.5).clamp(
        0, n_in - 1)
    lo = where.floor().long()
    hi = (lo + 1).clamp(max=n_in - 1)
    return lo.to(device), hi.to(device), (where - lo).to(device)


def _activate(a: torch.Tensor, kind: str) -> torch.Tensor:
    """In-place activation; one kind per layer keeps it a single pass over memory."""
    if kind == "sin":
        return a.sin_()
    if kind == "tanh":  # the algebraic sigmoid x / sqrt(1 + x²): tanh's shape, 4× cheaper
        return a.mul_(torch.square(a).add_(1.0).rsqrt_())
    # "bump": a Gaussian-like blob 2 / (1 + a²) - 1, in [-1, 1], cheaper than exp
    return a.square_().add_(1.0).reciprocal_().mul_(2.0).sub_(1.0)


class CPPN:
    """Random-weight CPPN generator with BigGAN's interface, plus camera and palette.

    Parameters
    ----------
    size : int or (width, height), pixels of the frames it draws
    seed : int, fixes all weights (the same seed always draws the same pictures)
    device : str or torch.device
    """

    name = "cppn"
    dim_z = 128
    n_classes = 1000

    def __init__(self, *, size=256, seed: int = 0, device="cpu"):
        self.size = _pair(size)
        self.drawn = colour_shape(*self.size)  # the frames it returns (the shape of size)
        self.field = field_shape(*self.size)
        self.device = torch.device(device)
        gen = torch.Generator().manual_seed(seed)

        def randn(*shape, std=1.0):
            return (torch.randn(*shape, generator=gen) * std).to(self.device)

        layers = len(ACTIVATIONS)
        # the feature columns of _features, by family: cartesian, radial, angular, and
        # each Fourier band (its sines, then all cosines)
        self.fourier = torch.cat([randn(2, FOURIER, std=s) for s in FOURIER_SCALES], 1)
        n_fourier = FOURIER * len(FOURIER_SCALES)
        family = [0] * 3 + [1] * 3 + [2] * 2 * len(ANGULAR) + [
            3 + j // FOURIER for j in range(n_fourier)] * 2
        self.family = torch.tensor(family, device=self.device)
        sizes = torch.bincount(self.family).float()
        self.first = randn(len(family), HIDDEN) * (1.5 / sizes.sqrt())[self.family, None]
        self.class_style = randn(self.n_classes, STYLE_DIM)  # each class's own style
        self.group_gain = randn(STYLE_DIM, N_GROUPS, std=1.5 / math.sqrt(STYLE_DIM))
        self.layer_gain = randn(layers, STYLE_DIM, HIDDEN, std=0.6 / math.sqrt(STYLE_DIM))
        self.z_bias = randn(layers, self.dim_z, HIDDEN, std=1.0 / math.sqrt(self.dim_z))
        self.style_bias = randn(layers, STYLE_DIM, HIDDEN, std=1.0 / math.sqrt(STYLE_DIM))
        self.weights = randn(layers - 1, HIDDEN, HIDDEN, std=1.3 / math.sqrt(HIDDEN))
        self.out = randn(HIDDEN, 2, std=1.2 / math.sqrt(HIDDEN))
        self.look = randn(STYLE_DIM, 4, std=1.0 / math.sqrt(STYLE_DIM))  # bands, ink, …
        self.spare_palette = randn(STYLE_DIM, 4 * 3, std=1.0 / math.sqrt(STYLE_DIM))
        # the field's pixel centres in frame heights, y up: [P, 2]
        self.grid = frame_points(*self.field, aspect=self.size[0] / self.size[1]).to(
            self.device)

    def styles(self, y: torch.Tensor) -> torch.Tensor:
        """Style of each class vector: the class styles mixed by ``y``, kept at unit scale.

        Dividing by ``|y|₂`` keeps a half-and-half mix as vivid as a pure class.
        """
        norm = y.norm(dim=1, keepdim=True).clamp(min=1e-6)
        return (y @ self.class_style) / norm

    def _coordinates(self, camera: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Each frame's pixel coordinates after its camera (:func:`ganclip.camera.seen`):
        [B, P, 2]."""
        if camera is None:
            return self.grid.expand(batch, -1, -1)
        return seen(self.grid, camera)

    def _features(self, xy: torch.Tensor) -> torch.Tensor:
        """Every coordinate feature of every pixel, family after family: [B, P, n_features]."""
        x, y = xy[..., :1], xy[..., 1:]
        r = torch.sqrt(x * x + y * y)
        theta = torch.atan2(y, x)
        k = torch.tensor(ANGULAR, dtype=xy.dtype, device=xy.device)
        fourier = xy @ self.fourier  # [B, P, bands * FOURIER]
        return torch.cat([x, y, x * y, r, torch.cos(3.0 * r), torch.sin(5.0 * r),
                          torch.cos(theta * k) * r.clamp(max=1.0),
                          torch.sin(theta * k) * r.clamp(max=1.0),
                          torch.sin(fourier), torch.cos(fourier)], -1)

    @staticmethod
    def _fold(xy: torch.Tensor, folds: torch.Tensor | None) -> torch.Tensor:
        """Each frame's coordinates folded by its symmetry, ``folds`` [B, 2] (order,
        amount): 2 mirrors left onto right, k >= 3 folds the plane into k mirrored wedges
        round the centre (a kaleidoscope). ``amount`` blends the folded coordinates with the
        plain ones, so a symmetry comes and goes gradually."""
        folding = None if folds is None else (folds[:, 1] > 0) & (folds[:, 0] >= 2)
        if folding is None or not torch.any(folding):
            return xy
        xy = xy.clone()
        for b in torch.nonzero(folding).flatten().tolist():
            order, amount = int(folds[b, 0]), float(folds[b, 1])
            x, y = xy[b, :, 0], xy[b, :, 1]
            if order == 2:
                folded = torch.stack([x.abs(), y], 1)
            else:
                wedge = 2 * math.pi / order
                phi = torch.remainder(torch.atan2(x, y), wedge)  # from straight up
                phi = torch.minimum(phi, wedge - phi)
                r = torch.sqrt(x * x + y * y)
                folded = torch.stack([r * torch.sin(phi), r * torch.cos(phi)], 1)
            xy[b] = torch.lerp(xy[b], folded, amount)
        return xy

    def _network(self, z, y, trunc, camera, folds=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The smooth field [B, 2, h, w] (palette position, shade) and the styles."""
        style = self.styles(y)
        zt = z * trunc
        gains = 1.0 + 0.5 * torch.tanh(torch.einsum("bs,lsh->lbh", style, self.layer_gain))
        biases = (torch.einsum("bz,lzh->lbh", zt, self.z_bias)
                  + torch.einsum("bs,lsh->lbh", style, self.style_bias))
        # truncation also sets how busy the pattern is: calm frames zoom out
        mixing = (F.softplus(style @ self.group_gain) + MIN_MIX) * (0.5 + 0.5 * trunc)  # [B, G]
        # each family's weights scaled by the frame's mix and first gain: one matmul
        first = self.first[None] * mixing[:, self.family, None] * gains[0].unsqueeze(1)
        # (h @ W) * gain as one matmul, the gain folded into W
        hidden = self.weights[None] * gains[1:].transpose(0, 1).unsqueeze(2)  # [B, L-1, H, H]
        xy = self._fold(self._coordinates(camera, len(z)), folds)
        out = torch.empty(len(z), xy.shape[1], 2, device=self.device)
        for b in range(len(z)):  # pixels in cache-sized pieces: the work is memory-bound
            for a in range(0, xy.shape[1], PIECE):
                h = _activate(torch.addmm(biases[0, b], self._features(xy[b, a:a + PIECE]),
                                          first[b]), ACTIVATIONS[0])
                for layer, kind in enumerate(ACTIVATIONS[1:], start=1):
                    h = _activate(torch.addmm(biases[layer, b], h, hidden[b, layer - 1]), kind)
                torch.mm(h, self.out, out=out[b, a:a + PIECE])
        fw, fh = self.field
        return out.transpose(1, 2).reshape(-1, 2, fh, fw), style

    def _palette(self, style: torch.Tensor, palette: torch.Tensor | None) -> torch.Tensor:
        """The frames' palettes [B, K, 3]; without one, a dark-to-light ramp from the style."""
        if palette is not None:
            return palette
        p = torch.sigmoid(1.5 * (style @ self.spare_palette)).view(-1, 4, 3)
        ramp = torch.linspace(0.15, 1.0, 4, device=p.device).view(1, 4, 1)
        return p * ramp

    def _tables(self, style, palette, flash) -> torch.Tensor:
        """Each frame's colour table [B, SHADES, LEVELS, 3] uint8: the palette ramp cut into
        soft-edged bands with inked edges, shaded, lifted by the flash."""
        look = style @ self.look  # [B, 4]
        bands = 3.0 + 4.0 * torch.sigmoid(look[:, :1])  # bands along the ramp
        ink = 0.55 * torch.sigmoid(2 * look[:, 1:2])  # how dark a band's edge is
        sharp = 0.12 + 0.2 * torch.sigmoid(look[:, 2:3])  # width of a band's soft edge
        u = torch.linspace(0, 1, LEVELS, device=style.device).unsqueeze(0)  # [1, L]
        tb = u * bands
        frac = tb - torch.floor(tb)
        step = torch.clamp((frac - 0.5) / sharp + 0.5, 0, 1)  # terraces with soft risers
        position = ((torch.floor(tb) + step * step * (3 - 2 * step)) / bands).clamp(0, 1)
        edge = torch.exp(-((frac - 0.5) / (0.6 * sharp)) ** 2)  # a dark line on each riser
        k = palette.shape[1]
        where = position * (k - 1)
        lo = where.floor().long().clamp(max=k - 1)
        hi = (lo + 1).clamp(max=k - 1)
        a = (where - lo).unsqueeze(-1)
        take = lambda idx: torch.gather(palette, 1, idx.unsqueeze(-1).expand(-1, -1, 3))  # noqa: E731
        rgb = take(lo) * (1 - a) + take(hi) * a  # [B, L, 3]
        rgb = rgb * (1 - ink * edge).unsqueeze(-1)
        shade = torch.linspace(0.72, 1.08, SHADES, device=style.device).view(1, SHADES, 1, 1)
        rgb = rgb.unsqueeze(1) * shade  # [B, S, L, 3]
        lift = (FLASH_LIFT * flash).view(-1, 1, 1, 1)
        rgb = rgb + (1 - rgb).clamp(min=0) * lift
        return rgb.clamp_(0, 1).mul_(255).add_(0.5).to(torch.uint8)

    def _colour(self, field: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
        """Full-size frames [B, H, W, 3] uint8 from the field, by table lookup.

        The field is scaled up bilinearly (pixel centres aligned, as ``F.interpolate``
        does) a band of :data:`BAND_ROWS` output rows at a time, so every full-size
        intermediate stays in cache."""
        w, h = self.drawn
        fw, fh = self.field
        # the field's channels as table coordinates, at the field's size
        # each frame's field spread over the whole ramp: centred and scaled by its own
        # spread, smooth in (z, y) as the field is, so no look is a flat colour
        mean = field.mean(dim=(2, 3), keepdim=True)
        spread = field.std(dim=(2, 3), keepdim=True) + 0.05
        coords = torch.sigmoid((field - mean) / spread * FIELD_GAIN)
        coords[:, 0].mul_(LEVELS - 1)
        coords[:, 1].mul_(SHADES - 1)
        r0, r1, rw = _bilinear(fh, h, self.device)
        c0, c1, cw = _bilinear(fw, w, self.device)
        out = torch.empty(len(field), h, w, 3, dtype=torch.uint8, device=self.device)
        flat = tables.view(len(field), SHADES * LEVELS, 3)
        for b in range(len(field)):
            for a in range(0, h, BAND_ROWS):
                rows = slice(a, a + BAND_ROWS)
                # index_select: several times faster than advanced indexing here
                low = torch.lerp(coords[b].index_select(1, r0[rows]),
                                 coords[b].index_select(1, r1[rows]),
                                 rw[rows, None])  # [2, band, fw]
                full = torch.lerp(low.index_select(2, c0), low.index_select(2, c1), cw)
                index = full[1].round_().mul_(LEVELS).add_(full[0]).add_(0.5).long()
                torch.index_select(flat[b], 0, index.view(-1), out=out[b, rows].view(-1, 3))
        return out

    @torch.inference_mode()
    def __call__(self, z: np.ndarray, y: np.ndarray, truncation: np.ndarray, *,
                 camera: np.ndarray | None = None, palette: np.ndarray | None = None,
                 symmetry: np.ndarray | None = None) -> np.ndarray:
        """Draw a batch of frames.

        Parameters
        ----------
        z : np.ndarray [shape=(B, 128)], latent, roughly in [-2, 2]
        y : np.ndarray [shape=(B, 1000)], class vectors (non-negative weights)
        truncation : np.ndarray [shape=(B,)], in (0, 1]; lower is calmer
        camera : np.ndarray [shape=(B, 5)] or None: zoom, angle (radians), shift x, shift y
            (frame heights), flash (0..1); see :meth:`~ganclip.plan.Plan.camera`
        palette : np.ndarray [shape=(B, K, 3)] or None, RGB 0..1 from dark to light; None
            takes one from the class style
        symmetry : np.ndarray [shape=(B, 2)] or None: order (0 none, 2 mirror, k >= 3
            kaleidoscope) and amount 0..1 (:meth:`~ganclip.plan.Plan.folds`)

        Returns
        -------
        frames : np.ndarray [shape=(B, height, width, 3)], uint8 RGB, of ``size``; above
            :data:`COLOUR_PIXELS` of its shape at ``drawn``, for the encoder to scale up
        """
        as_tensor = lambda a: torch.as_tensor(np.asarray(a, np.float32), device=self.device)  # noqa: E731
        z, y = as_tensor(z), as_tensor(y)
        trunc = as_tensor(truncation).view(-1, 1)
        cam = None if camera is None else as_tensor(camera)
        folds = None if symmetry is None else as_tensor(symmetry)
        field, style = self._network(z, y, trunc, cam, folds)
        flash = torch.zeros(len(z), device=self.device) if cam is None else cam[:, 4]
        tables = self._tables(style, self._palette(style, None if palette is None
                                                   else as_tensor(palette)), flash)
        return self._colour(field, tables).cpu().numpy()
