"""Model weights: a registry of sources, a local cache, resumable checked downloads, offline errors.

Each BigGAN model is a folder holding ``config.json`` and ``pytorch_model.bin``::

    <cache>/<model-name>/config.json
    <cache>/<model-name>/pytorch_model.bin

where ``<cache>`` is :func:`cache_dir`. :func:`download` fills that folder from the
model's sources, tried in order (the original ``pytorch-pretrained-biggan`` S3 URLs,
then Hugging Face hub mirrors); :func:`resolve_weights` finds the weights to load
(a user's ``--weights`` path, else the cache) and never downloads unless asked.

Sources can be replaced: pass ``sources=`` (a sequence of :class:`UrlSource` and
:class:`HubSource`) to :func:`download`, or set ``GANCLIP_WEIGHTS_URL`` to the base
URL of a mirror laid out like the cache (``<base>/<model-name>/<file>``); that
mirror is tried before the built-in sources.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ganclip.errors import WeightsError, lookup, one_line

log = logging.getLogger(__name__)

TIMEOUT = 30.0  # seconds to connect, and to wait for each read
CHUNK = 1 << 20  # bytes read, hashed and written at a time; never the whole file in memory
CONFIG = "config.json"
CHECKPOINTS = ("model.safetensors", "pytorch_model.bin")  # a --weights folder's, preferred first
WAYS_OUT = ("pass --weights PATH (a folder with config.json and pytorch_model.bin, "
            "or the weights file with config.json beside it) or use --model cppn")


# ---------------------------------------------------------------------------------------------
# registry


@dataclass(frozen=True)
class FileSpec:
    name: str                  # file name inside the model folder
    size: int | None = None    # bytes; None where the published size is not known
    sha256: str | None = None  # lowercase hex digest; None where not known


@dataclass(frozen=True)
class UrlSource:
    """A plain HTTP(S) location; ``url`` holds ``{file}`` where the file name goes."""

    url: str  # e.g. "https://host/biggan/biggan-deep-128-{file}"

    @property
    def label(self) -> str:
        return urllib.parse.urlsplit(self.url).netloc or self.url

    def fetch(self, file: FileSpec, dest: Path, *, quiet: bool) -> None:
        """Put ``file`` at ``dest``, checked; raise :class:`SourceError` when it cannot."""
        fetch_url(self.url.format(file=file.name), dest, file, quiet=quiet)


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face hub repository, fetched with ``huggingface_hub.hf_hub_download``."""

    repo_id: str                 # e.g. "osanseviero/BigGAN-deep-128"
    revision: str | None = None  # None: the default branch
    endpoint: str | None = None  # None: huggingface_hub's default (honours HF_ENDPOINT)

    @property
    def label(self) -> str:
        return f"hf.co/{self.repo_id}"

    def fetch(self, file: FileSpec, dest: Path, *, quiet: bool) -> None:
        """Put ``file`` at ``dest``, checked; raise :class:`SourceError` when it cannot."""
        fetch_hub(self, file, dest, quiet=quiet)


Source = UrlSource | HubSource


@dataclass(frozen=True)
class ModelSpec:
    name: str                         # registry key, also the cache folder's name
    files: tuple[FileSpec, ...]       # what the model folder must hold
    sources: tuple[Source, ...]       # tried in order
    approx_mb: float                  # published size of the checkpoint, for listings


_S3 = "https://s3.amazonaws.com/models.huggingface.co/biggan/{name}-{{file}}"


def _biggan(side: int, approx_mb: float) -> ModelSpec:
    name = f"biggan-deep-{side}"
    # Exact byte sizes and sha256 digests of the published files are not recorded here:
    # they could not be checked from this machine. Fill them in from a verified download
    # (`sha256sum`, `stat -c %s`); until then a download is checked against the server's
    # Content-Length / Content-Range, and a cached file only for being non-empty.
    return ModelSpec(
        name=name,
        files=(FileSpec(CONFIG), FileSpec("pytorch_model.bin")),
        sources=(UrlSource(_S3.format(name=name)),  # pytorch-pretrained-biggan 0.1.1, model.py
                 HubSource(f"osanseviero/BigGAN-deep-{side}")),
        approx_mb=approx_mb,
    )


# approx_mb: the sizes pytorch-pretrained-biggan's README gives ("the model dump weights 201 MB")
MODELS: dict[str, ModelSpec] = {s.name: s for s in (
    _biggan(128, 201), _biggan(256, 224), _biggan(512, 225))}


def model_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; :class:`BadInputError` naming the choices otherwise."""
    return lookup(MODELS, name, what="model")


def default_sources(name: str) -> tuple[Source, ...]:
    """Sources :func:`download` tries for ``name``: ``$GANCLIP_WEIGHTS_URL`` first when set."""
    spec = model_spec(name)
    base = os.environ.get("GANCLIP_WEIGHTS_URL", "").strip()
    mirror = (UrlSource(f"{base.rstrip('/')}/{name}/{{file}}"),) if base else ()
    return mirror + spec.sources


# ---------------------------------------------------------------------------------------------
# cache


def cache_dir() -> Path:
    """``$GANCLIP_CACHE``, else ``$XDG_CACHE_HOME/ganclip``, else ``~/.cache/ganclip``."""
    if os.environ.get("GANCLIP_CACHE"):
        return Path(os.environ["GANCLIP_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "ganclip"
    return Path.home() / ".cache" / "ganclip"


def _complete(path: Path, file: FileSpec) -> bool:
    # Only whole, checked files are ever renamed into place, so a size check is enough here;
    # hashing 200 MB on every run would not be.
    if not path.is_file():
        return False
    size = path.stat().st_size
    return size > 0 and (file.size is None or size == file.size)


def cached_path(name: str) -> Path | None:
    """The model's cache folder when it holds every file at its expected size, else None."""
    spec = model_spec(name)
    folder = cache_dir() / name
    return folder if all(_complete(folder / f.name, f) for f in spec.files) else None


def is_cached(name: str) -> bool:
    """Whether :func:`cached_path` finds the model."""
    return cached_path(name) is not None


@dataclass(frozen=True)
class ModelInfo:
    name: str
    size_mb: float  # published size of the checkpoint
    cached: bool
    path: Path      # the cache folder, whether or not it exists yet


def model_info(name: str) -> ModelInfo:
    """One registry model's size, whether it is cached, and its cache folder."""
    return ModelInfo(name, model_spec(name).approx_mb, is_cached(name), cache_dir() / name)


def list_models() -> list[ModelInfo]:
    """Every registry model with its size, whether it is cached, and its cache folder."""
    return [model_info(name) for name in MODELS]


def weights_identity(path) -> dict:
    """What makes a checkpoint these weights, wherever it lies: its size and sha256.

    A render resumed on another machine (another cache folder) still matches."""
    path = Path(path)
    return {"bytes": path.stat().st_size, "sha256": _sha256(path).hexdigest()}


# ---------------------------------------------------------------------------------------------
# download


class SourceError(Exception):
    """One source could not supply one file; the message is one short line."""


def _bar(total: int | None, initial: int, desc: str, quiet: bool) -> tqdm:
    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True,
                unit_divisor=1024, disable=quiet or not sys.stderr.isatty(), leave=False)


def _check(path: Path, file: FileSpec, digest: str | None) -> None:
    """Refuse a finished file whose size or sha256 is wrong: remove it and say so."""
    size = path.stat().st_size
    problem = None
    if file.size is not None and size != file.size:
        problem = f"size mismatch ({size} bytes, expected {file.size})"
    elif file.sha256 is not None:
        digest = digest or _sha256(path).hexdigest()
        if digest != file.sha256.lower():
            problem = f"checksum mismatch (sha256 {digest[:12]}…, expected {file.sha256[:12]}…)"
    if problem:
        path.unlink(missing_ok=True)
        raise SourceError(f"{problem}; file removed")


def _sha256(path: Path, hasher=None):
    """Feed the file at ``path`` to ``hasher`` (a new sha256 when None), chunk by chunk."""
    hasher = hasher or hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            hasher.update(chunk)
    return hasher


def _version() -> str:
    from ganclip import __version__  # here, not at the top: ganclip/__init__ may import us

    return __version__


def _open(url: str, start: int):
    headers = {"User-Agent": f"ganclip/{_version()} python-urllib"}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT)


def fetch_url(url: str, dest: Path, file: FileSpec, *, quiet: bool = False) -> None:
    """Stream ``url`` into ``dest`` through ``dest.part``, resuming a ``.part`` left by an
    interrupted run, checking size and sha256; :class:`SourceError` on any failure.

    A server that ignores ``Range`` (answers 200) restarts the file from its first byte.
    An interrupted transfer keeps the ``.part`` so that the next run resumes it.
    """
    part = dest.with_name(dest.name + ".part")
    try:
        digest = _stream(url, part, file, quiet=quiet)
    except urllib.error.HTTPError as e:
        raise SourceError(f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        reason = getattr(e.reason, "strerror", None) or e.reason
        raise SourceError(one_line(reason, limit=100)) from None
    except (OSError, http.client.HTTPException) as e:
        got = part.stat().st_size if part.exists() else 0
        raise SourceError(f"interrupted after {got} bytes ({one_line(repr(e), limit=60)}); "
                          "run again to resume") from None
    log.info("%s: %d bytes, sha256 %s", url, part.stat().st_size, digest)
    _check(part, file, digest)
    os.replace(part, dest)


def _stream(url: str, part: Path, file: FileSpec, *, quiet: bool) -> str:
    """Write ``url`` into ``part`` (resuming it when it has bytes); return the sha256 hex digest."""
    for _ in range(2):  # a second pass only after throwing away an unusable .part
        start = part.stat().st_size if part.exists() else 0
        if file.size is not None and start > file.size:
            part.unlink()
            start = 0
        try:
            resp = _open(url, start)
        except urllib.error.HTTPError as e:
            if e.code == 416 and start:  # the .part is already as long as the file, or longer
                part.unlink()
                continue
            raise
        with resp:
            resumed = resp.status == 206
            first, total = _content_range(resp) if resumed else (0, _length(resp))
            if first != start:  # a range we did not ask for: start again from nothing
                part.unlink(missing_ok=True)
                continue
            if file.size is not None and total is not None and total != file.size:
                part.unlink(missing_ok=True)
                raise SourceError(f"size mismatch (server has {total} bytes, "
                                  f"expected {file.size}); file removed")
            hasher = hashlib.sha256()
            if resumed:  # the digest covers the bytes already on disk, then the new ones
                log.info("resuming %s at byte %d", url, start)
                _sha256(part, hasher)
            with open(part, "ab" if resumed else "wb") as out, \
                    _bar(total, start if resumed else 0, file.name, quiet) as bar:
                for chunk in iter(lambda: resp.read(CHUNK), b""):
                    out.write(chunk)
                    hasher.update(chunk)
                    bar.update(len(chunk))
            got = part.stat().st_size
            if total is not None and got != total:
                raise http.client.IncompleteRead(b"", total - got)
            return hasher.hexdigest()
    raise SourceError("the server's ranges do not match the partial file")


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _length(resp) -> int | None:
    length = resp.headers.get("Content-Length", "")
    return int(length) if length.isdigit() else None


def _content_range(resp) -> tuple[int | None, int | None]:
    """First byte of a 206 answer and the whole file's size in bytes (None when not told)."""
    m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
    if not m:
        return None, None
    first = int(m.group(1))
    if m.group(3) != "*":
        return first, int(m.group(3))
    length = _length(resp)
    return first, None if length is None else first + length


def _hub_reason(e: BaseException) -> str:
    while e.__cause__ is not None:  # huggingface_hub wraps the telling error in a generic one
        e = e.__cause__
    if type(e).__name__ == "OfflineModeIsEnabled":
        return "offline mode (HF_HUB_OFFLINE is set)"
    return one_line(str(e).strip().split("\n")[0] or repr(e), limit=100)


def fetch_hub(source: HubSource, file: FileSpec, dest: Path, *, quiet: bool = False) -> None:
    """Fetch ``file`` from a hub repository into ``dest``, checked; :class:`SourceError` on failure.

    ``huggingface_hub`` downloads (and resumes) into ``<model folder>/.hub/``; the checked file
    is then moved into place, so the cache layout is the same whichever source supplied it.
    """
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise SourceError("huggingface_hub is not installed") from None

    class Bar(tqdm):  # huggingface_hub takes a class; this one keeps quiet when we must
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = quiet or not sys.stderr.isatty()
            super().__init__(*args, **kwargs)

    from huggingface_hub import constants

    host = urllib.parse.urlsplit(source.endpoint or constants.ENDPOINT).hostname
    try:  # huggingface_hub retries a dead network for ~25 s; a failed lookup says it at once
        if not constants.HF_HUB_OFFLINE:  # offline mode: let the hub say so itself
            socket.getaddrinfo(host, 443)
    except OSError as e:
        raise SourceError(f"cannot resolve {host} ({e.strerror or e}); offline?") from None
    staging = dest.parent / ".hub"
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.ERROR)  # its retry chatter is not one line
    try:
        got = Path(hf_hub_download(repo_id=source.repo_id, filename=file.name,
                                   revision=source.revision, endpoint=source.endpoint,
                                   local_dir=staging, tqdm_class=Bar,
                                   library_name="ganclip", library_version=_version()))
    except Exception as e:  # noqa: BLE001 - a third-party backend; any failure means "next source"
        raise SourceError(_hub_reason(e)) from None
    finally:
        hub_log.setLevel(level)
    _check(got, file, None)
    os.replace(got, dest)


def download(name: str, *, quiet: bool = False, sources=None) -> Path:
    """Fetch a model's files into its cache folder unless they are already there.

    Parameters
    ----------
    name : str, a key of :data:`MODELS`
    quiet : bool, no progress bars (they are also off when stderr is not a terminal)
    sources : sequence of UrlSource / HubSource, or None for :func:`default_sources`

    Returns
    -------
    folder : Path, ``cache_dir() / name`` holding ``config.json`` and ``pytorch_model.bin``

    Raises
    ------
    WeightsError
        every source failed; one line naming each source and why, and the ways out.
    """
    spec = model_spec(name)
    if (done := cached_path(name)) is not None:
        return done
    sources = default_sources(name) if sources is None else tuple(sources)
    folder = cache_dir() / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WeightsError(f"cannot create the weights cache {folder} ({e.strerror}); "
                           "set GANCLIP_CACHE to a writable folder") from None
    failures = []
    for source in sources:
        for file in spec.files:  # files a previous source or run completed are kept
            if _complete(folder / file.name, file):
                continue
            log.info("downloading %s %s from %s", name, file.name, source.label)
            try:
                source.fetch(file, folder / file.name, quiet=quiet)
            except SourceError as e:
                failures.append(f"{source.label}: {file.name}: {e}")
                break  # this source's other files would most likely fail the same way
    if cached_path(name) is None:
        shutil.rmtree(folder / ".hub", ignore_errors=True)  # a .part stays, to resume from
        if not any(folder.iterdir()):
            folder.rmdir()
        tried = "; ".join(failures) or "no sources"
        raise WeightsError(f"could not download {name} weights ({tried}); {WAYS_OUT}")
    shutil.rmtree(folder / ".hub", ignore_errors=True)
    return folder


_download = download  # resolve_weights has a parameter of the same name


# ---------------------------------------------------------------------------------------------
# what to load


def _local(path: Path) -> Path:
    shown = f"--weights {path}"
    if path.is_dir():
        found = [path / c for c in CHECKPOINTS if (path / c).is_file()]
        missing = ([] if (path / CONFIG).is_file() else [CONFIG]) + \
            ([] if found else [" or ".join(CHECKPOINTS)])
        if missing:
            raise WeightsError(f"{shown}: the folder has no {' and no '.join(missing)}; "
                               f"it needs {CONFIG} and {' or '.join(CHECKPOINTS)}")
        return found[0]
    if path.is_file():
        if path.name == CONFIG:
            return _local(path.parent)
        if not (path.parent / CONFIG).is_file():
            raise WeightsError(f"{shown}: no {CONFIG} beside the weights file "
                               f"(expected {path.parent / CONFIG})")
        if path.stat().st_size == 0:
            raise WeightsError(f"{shown}: the weights file is empty")
        return path
    raise WeightsError(f"{shown}: no such file or folder")


def resolve_weights(name: str, weights: str | os.PathLike | None = None, *,
                    download: bool = False, quiet: bool = False) -> Path:
    """The checkpoint file to load for model ``name``; its ``config.json`` lies beside it.

    Parameters
    ----------
    name : str, a key of :data:`MODELS`
    weights : path or None, a user's ``--weights``: a folder with ``config.json`` and
        ``model.safetensors`` or ``pytorch_model.bin`` (safetensors preferred), or a weights
        file with ``config.json`` beside it
    download : bool, fetch the model when it is not cached (False: never touch the network)
    quiet : bool, no progress bars while downloading

    Returns
    -------
    checkpoint : Path, a weights file; ``checkpoint.with_name("config.json")`` is its config

    Raises
    ------
    WeightsError
        a bad ``weights`` path (naming it and what is missing); or the model is not cached
        (and ``download`` is False, or every source failed).
    """
    spec = model_spec(name)
    if weights is not None:
        return _local(Path(weights).expanduser())
    folder = cached_path(name)
    if folder is None and download:
        folder = _download(name, quiet=quiet)
    if folder is None:
        raise WeightsError(f"{name} weights are not cached in {cache_dir() / name}; "
                           f"run `ganclip models download {name}`, or {WAYS_OUT}")
    return folder / spec.files[-1].name
