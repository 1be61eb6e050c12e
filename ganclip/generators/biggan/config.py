"""BigGAN-deep's settings: the fields of the published ``config.json`` and the three
published configurations."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ganclip.errors import WeightsError


@dataclass(frozen=True)
class BigGANConfig:
    """The fields of the published ``config.json``.

    ``layers`` holds one ``(upsample, in, out)`` per block, channels in units of
    ``channel_width``; the attention block sits before block ``attention_layer_position``.
    """

    output_dim: int = 128                   # side of the images, pixels
    z_dim: int = 128                        # noise size; also the class embedding's size
    class_embed_dim: int = 128              # recorded by the reference, unused by its model
    channel_width: int = 128                # channels per unit in ``layers``
    num_classes: int = 1000                 # ImageNet classes
    layers: tuple = ()                      # ((upsample, in_units, out_units), ...)
    attention_layer_position: int = 8       # the attention block goes before this block
    eps: float = 1e-4                       # batch-norm epsilon
    n_stats: int = 51                       # stored statistics for truncations 0, 1/50, …, 1

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "config") -> "BigGANConfig":
        """Build from a ``config.json`` dict; :class:`WeightsError` naming ``source`` and the field
        on an unknown, missing or mistyped field."""
        if not isinstance(d, dict):
            raise WeightsError(f"{source}: expected a JSON object of BigGAN settings")
        names = [f.name for f in fields(cls)]
        unknown = [k for k in d if k not in names]
        missing = [k for k in names if k not in d]
        if unknown or missing:
            what = "unknown field" if unknown else "missing field"
            raise WeightsError(f"{source}: {what} '{(unknown or missing)[0]}' "
                               f"(a BigGAN config has exactly: {', '.join(names)})")
        try:
            layers = tuple((bool(up), int(i), int(o)) for up, i, o in d["layers"])
            values = {k: (layers if k == "layers" else
                          float(d[k]) if k == "eps" else _integer(d[k])) for k in names}
        except (TypeError, ValueError) as e:
            raise WeightsError(f"{source}: a field has the wrong type ({e}); "
                               f"'layers' is a list of [upsample, in, out]") from None
        return cls(**values)

    @classmethod
    def from_json(cls, path) -> "BigGANConfig":
        """Read a ``config.json``; :class:`WeightsError` naming the file when it is bad."""
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise WeightsError(f"{path}: not a readable JSON config ({e})") from None
        return cls.from_dict(d, source=str(path))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = [list(layer) for layer in self.layers]
        return d


def _integer(value) -> int:
    if isinstance(value, bool) or int(value) != value:
        raise ValueError(f"{value!r} is not an integer")
    return int(value)


def _deep(side: int, layers) -> BigGANConfig:
    return BigGANConfig(output_dim=side, layers=tuple((bool(u), i, o) for u, i, o in layers))


_TRUNK = ((0, 16, 16), (1, 16, 16), (0, 16, 16), (1, 16, 8), (0, 8, 8))
# The published configs (pytorch-pretrained-biggan 0.1.1, convert_tf_to_pytorch.py): each
# resolution adds blocks at the end; only output_dim and layers differ.
BIGGAN_DEEP_128 = _deep(128, _TRUNK + ((1, 8, 4), (0, 4, 4), (1, 4, 2), (0, 2, 2), (1, 2, 1)))
BIGGAN_DEEP_256 = _deep(256, _TRUNK + ((1, 8, 8), (0, 8, 8), (1, 8, 4), (0, 4, 4), (1, 4, 2),
                                       (0, 2, 2), (1, 2, 1)))
BIGGAN_DEEP_512 = _deep(512, BIGGAN_DEEP_256.layers[:] + ((0, 1, 1), (1, 1, 1)))
CONFIGS = {f"biggan-deep-{c.output_dim}": c
           for c in (BIGGAN_DEEP_128, BIGGAN_DEEP_256, BIGGAN_DEEP_512)}
