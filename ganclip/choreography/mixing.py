"""The image types frame by frame: each type's arrays, the blend from one to the next, the
palettes; what both modes use once they know which type each frame shows."""

from __future__ import annotations

import numpy as np

from ganclip.plan import PALETTE_COLOURS


def transition_mix(labels: np.ndarray, *, n_types: int, frames: int) -> np.ndarray:
    """Per-frame weights over image types, ramping linearly over ``frames`` at each change.

    Where the type changes, the mix moves from the old type to the new one by
    ``1 / frames`` per frame, so a change takes ``frames`` frames to complete; a
    change that arrives mid-transition blends onward from wherever the mix is.
    ``frames = 0`` gives hard cuts.

    Returns
    -------
    mix : np.ndarray [shape=(T, n_types)], float32, rows sum to 1
    """
    target = np.eye(n_types, dtype=np.float32)[labels]
    if frames <= 0 or len(labels) == 0:
        return target
    step = 1.0 / frames
    mix = np.empty_like(target)
    current = target[0].copy()
    for t in range(len(labels)):
        delta = target[t] - current
        largest = np.abs(delta).max()
        if largest > step:
            delta *= step / largest
        current = current + delta
        mix[t] = current
    return mix


def type_arrays(image_types, *, dim_z: int = 128,
                n_classes: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each image type's latent, class vector and truncation, stacked, for a generator of
    ``dim_z`` latent dimensions and ``n_classes`` classes.

    Returns
    -------
    latents : np.ndarray [shape=(N, dim_z)], float32
    classes : np.ndarray [shape=(N, n_classes)], float32
    truncations : np.ndarray [shape=(N,)], float32
    """
    return (np.stack([t.latent_vector(dim_z) for t in image_types]).astype(np.float32),
            np.stack([t.class_vector(n_classes) for t in image_types]).astype(np.float32),
            np.array([t.truncation for t in image_types], np.float32))


def _palettes(image_types) -> np.ndarray:
    """Each image type's palette ramp: [N, PALETTE_COLOURS, 3] RGB 0..1."""
    return np.stack([t.palette_array(PALETTE_COLOURS) for t in image_types]).astype(
        np.float32)
