"""One exception root for everything ganclip reports to a user.

The CLI turns any :class:`GanclipError` into a single ``error: …`` line and a
non-zero exit; anything else escaping is a bug.
"""


class GanclipError(Exception):
    """Root of every error ganclip raises on purpose."""

    exit_code = 1


class BadInputError(GanclipError, ValueError):
    """A flag, argument or input file is wrong; the message says which and how to fix it."""

    exit_code = 2


class AudioError(BadInputError):
    """An audio file is missing, unreadable, not audio, truncated or too short."""


class ImageTypeError(BadInputError):
    """An image-type name or file is unknown or malformed."""


class WeightsError(GanclipError):
    """Model weights are missing, corrupt or could not be fetched."""


class EncodingError(GanclipError):
    """The video or audio could not be encoded or written."""


def one_line(exc: BaseException | str, *, limit: int | None = None) -> str:
    """An exception (or text) as one line for a user: whitespace runs collapsed, the type's
    name when the message is empty, cut to ``limit`` characters with an ellipsis."""
    text = exc if isinstance(exc, str) else str(exc)
    line = " ".join(text.split()) or (type(exc).__name__ if not isinstance(exc, str) else "")
    if limit is not None and len(line) > limit:
        line = line[:limit - 1] + "…"
    return line


def lookup(table: dict, name: str, *, what: str, choices=None):
    """``table[name]``; else a :class:`BadInputError` saying ``unknown <what> '<name>';
    available: …`` (``choices`` default to the table's keys)."""
    try:
        return table[name]
    except KeyError:
        raise BadInputError(f"unknown {what} '{name}'; available: "
                            f"{', '.join(choices if choices is not None else table)}") from None
