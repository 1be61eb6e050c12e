"""The user's own models, added to the cache under a name (``ganclip models add``).

``ganclip models add NAME PATH|URL`` copies or downloads a model file (a StyleGAN ``.pkl``
or ``.safetensors``, an ``.onnx``) into ``<cache>/added/NAME/``, the download resumable,
checksummed and with a progress bar as the BigGAN weights' are
(:func:`ganclip.weights.fetch_url`). The file is read once to check it (a bad one is
removed and reported) and what it is goes into ``<cache>/added/models.json``; after that
``--model NAME`` works anywhere ``--model PATH`` does.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path

from ganclip.errors import BadInputError, WeightsError
from ganclip.files import atomic_path
from ganclip.weights import FileSpec, SourceError, _sha256, cache_dir, fetch_url

log = logging.getLogger(__name__)

INDEX = "models.json"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True)
class AddedModel:
    """One model in the cache, as ``ganclip models`` lists it."""

    name: str  # what --model takes
    file: str  # the file's name inside <cache>/added/NAME/
    kind: str  # "StyleGAN2", "StyleGAN3", "ONNX", …
    resolution: str  # "1024x1024"
    bytes: int
    sha256: str
    source: str  # the path or URL it was added from

    @property
    def path(self) -> Path:
        return folder() / self.name / self.file


def folder() -> Path:
    """Where added models live: ``<cache>/added``."""
    return cache_dir() / "added"


def added() -> dict[str, AddedModel]:
    """The added models, by name (none when the index is missing or unreadable)."""
    index = folder() / INDEX
    try:
        rows = json.loads(index.read_text())
        return {r["name"]: AddedModel(**r) for r in rows}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.warning(f"{index} is unreadable ({exc}); no added models are listed")
        return {}


def path_of(name: str) -> Path | None:
    """The file of the added model ``name``, or None when there is none."""
    model = added().get(name)
    return model.path if model is not None and model.path.is_file() else None


def _write(models: dict[str, AddedModel]) -> None:
    folder().mkdir(parents=True, exist_ok=True)
    with atomic_path(folder() / INDEX) as tmp:
        tmp.write_text(json.dumps([asdict(m) for m in models.values()], indent=1))


def _is_url(source: str) -> bool:
    return urllib.parse.urlsplit(source).scheme in ("http", "https")


def add(name: str, source: str, *, sha256: str | None = None, quiet: bool = False,
        reserved=()) -> AddedModel:
    """Put a model file in the cache under ``name``.

    Parameters
    ----------
    name : str, lowercase letters, digits, ``. _ -``; not one of ``reserved`` (the built-in
        names)
    source : a local path or an http(s) URL of a ``.pkl``, ``.safetensors`` or ``.onnx``
    sha256 : str or None, the digest the file must have (a download is checked against it)
    quiet : bool, no progress bar

    Returns
    -------
    AddedModel
    """
    from ganclip import generators

    if not _NAME.fullmatch(name or ""):
        raise BadInputError(f"model name {name!r}: use 1-64 lowercase letters, digits, '.', "
                            "'_' or '-', starting with a letter or digit")
    if name in reserved or name == "auto":
        raise BadInputError(f"model name {name!r} is built in; choose another")
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise BadInputError(f"--sha256 {sha256!r}: give the 64 hex digits of the file's sha256")
    file = Path(urllib.parse.urlsplit(source).path).name if _is_url(source) else \
        Path(source).name
    suffix = Path(file).suffix.lower()
    if suffix not in generators.FILE_KINDS:
        raise BadInputError(f"{source}: ganclip adds model files ending in "
                            f"{', '.join(sorted(generators.FILE_KINDS))}")
    home = folder() / name
    home.mkdir(parents=True, exist_ok=True)
    dest = home / file
    if _is_url(source):
        try:
            fetch_url(source, dest, FileSpec(file, sha256=sha256 and sha256.lower()),
                      quiet=quiet)
        except SourceError as exc:
            raise WeightsError(f"could not download {source}: {exc}") from None
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise BadInputError(f"{source}: no such file")
        with atomic_path(dest) as tmp:
            shutil.copyfile(path, tmp)
    digest = _sha256(dest).hexdigest()
    if sha256 is not None and digest != sha256.lower():
        dest.unlink()
        raise WeightsError(f"{source}: sha256 is {digest}, not the {sha256.lower()} given; "
                           "the file was not added")
    try:
        spec = generators.file_spec(dest)  # read once: a bad file is not kept
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    side = spec.native_size
    model = AddedModel(name=name, file=file, kind=spec.family or suffix[1:].upper(),
                       resolution=f"{side}x{side}" if side else "any",
                       bytes=dest.stat().st_size, sha256=digest, source=source)
    for other in home.iterdir():  # an earlier file of the same name, replaced
        if other.name != file:
            other.unlink()
    models = added()
    models[name] = model
    _write(models)
    return model
