"""Reaching a Ray cluster: start one here, or join one, each failure said in one line.

Ray waits minutes for a head that is not there, retries a wrong token for twenty seconds
and reports a version mismatch as a screen of text; :func:`connect` checks first that
someone listens (:data:`CONNECT_TIMEOUT`) and turns what Ray raises into a
:class:`ClusterError` naming the address and what to do.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import sys
from dataclasses import dataclass

from ganclip.errors import BadInputError, GanclipError, one_line

log = logging.getLogger("ganclip.cluster")

CONNECT_TIMEOUT = 5.0  # seconds to wait for a head's port to answer before saying nobody does
LOCAL = ("local", None)  # addresses that start a Ray on this machine for the render
INSTALL = "--ray needs Ray: pip install 'ganclip[ray]'"


class ClusterError(GanclipError):
    """The Ray cluster could not be reached, or cannot do the work (no resources for the
    actors, segments lost too often)."""


def import_ray():
    """The ``ray`` module; a one-line :class:`BadInputError` without the ``ray`` extra."""
    try:
        import ray
    except ImportError:
        raise BadInputError(INSTALL) from None
    return ray


@dataclass
class Connection:
    """This process's link to a cluster, and whether it made it (and so must undo it)."""

    address: str  # as given, for messages: "local", "auto", "HOST:PORT"
    owned: bool  # True when ray.init was called here: close() shuts Ray down


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 host in brackets) as (host, port); a one-line error else."""
    host, _, port = str(address).rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInputError(f"--ray {address}: give nothing (a Ray started here for the "
                            "render), auto (the cluster `ray start` made on this machine) "
                            "or HOST:PORT of a cluster's head, e.g. 10.0.0.5:6379")
    return host, int(port)


def _find_auto(ray) -> str:
    """The head ``--ray auto`` means: $RAY_ADDRESS, else the one ``ray start`` recorded."""
    try:
        from ray._private.services import canonicalize_bootstrap_address_or_die
    except ImportError:  # moved in another Ray: let ray.init find it, unchecked
        return "auto"
    try:
        return canonicalize_bootstrap_address_or_die("auto")
    except (ConnectionError, ValueError) as exc:
        raise ClusterError(f"--ray auto: no running Ray cluster was found on this machine "
                           f"({one_line(exc, limit=80)}); start one with `ray start --head`, "
                           "or give --ray HOST:PORT") from None


def check_listening(address: str, *, shown: str) -> None:
    """A :class:`ClusterError` when nothing accepts a connection at ``address`` within
    :data:`CONNECT_TIMEOUT` seconds."""
    host, port = parse_address(address)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        why = f"no answer in {CONNECT_TIMEOUT:g} s" if isinstance(exc, TimeoutError) \
            else one_line(exc.strerror or exc, limit=80).lower()
        raise ClusterError(f"--ray {shown}: no Ray cluster answers at {host}:{port} ({why}); "
                           "start its head with `ray start --head`, or check the address "
                           "and the firewall") from None


def check(address) -> None:
    """What can be told of ``address`` before any long work: Ray is installed, and a
    "HOST:PORT" is well formed and listened on (an open :class:`~ganclip.cluster.Pool`,
    "local" and "auto" pass)."""
    if address is not None and not isinstance(address, str):  # a Pool: already open
        return
    import_ray()
    if address not in LOCAL and address != "auto":
        check_listening(address, shown=address)


AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


@contextlib.contextmanager
def _quiet(name: str):
    """Logger ``name`` says only errors inside the block."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _version_line(text: str, shown: str) -> str:
    """Ray's many-line version mismatch as one line."""
    found = re.findall(r"Ray: (\S+)\s+Python: (\S+)", text)
    if len(found) == 2:
        (theirs, their_py), (ours, our_py) = found
        return (f"--ray {shown}: the cluster runs Ray {theirs} on Python {their_py}, this "
                f"ganclip Ray {ours} on Python {our_py}; install the same versions of Python "
                "and ganclip[ray] on every node and here")
    return f"--ray {shown}: {one_line(text, limit=200)}"


def connect(address, *, verbose: bool = False) -> Connection:
    """Start Ray on this machine (``address`` None or "local") or join a running cluster
    ("auto", "HOST:PORT"); a process already connected keeps its connection.

    A cluster started with token authentication (``RAY_AUTH_MODE=token ray start …``) is
    joined with ``RAY_AUTH_MODE=token`` and its token (``RAY_AUTH_TOKEN``,
    ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``) in this process's environment; it is
    not turned on here for a token found, since a driver in token mode cannot own actors on
    a cluster without it (their tasks never start).

    Parameters
    ----------
    address : None, "local", "auto" or "HOST:PORT"
    verbose : bool, show the actors' own output (Ray's log_to_driver)

    Returns
    -------
    Connection
    """
    ray = import_ray()
    shown = "local" if address in LOCAL else str(address)
    if ray.is_initialized():
        log.debug("Ray is already connected in this process; the render uses that cluster")
        return Connection(shown, owned=False)
    quiet_ray = dict(include_dashboard=False, log_to_driver=verbose,
                     logging_level=logging.WARNING)
    if address in LOCAL:
        log.debug("starting Ray on this machine for the render")
        with _quiet(AUTH_LOGGER):  # "token authentication is enabled": nothing to do for it
            ray.init(address="local", **quiet_ray)  # not None: that joins one left running
        return Connection(shown, owned=True)
    target = _find_auto(ray) if address == "auto" else str(address)
    if target != "auto":
        check_listening(target, shown=shown)
    try:
        ray.init(address=target, **{k: v for k, v in quiet_ray.items()
                                    if k != "include_dashboard"})
    except RuntimeError as exc:
        if "Version mismatch" in str(exc):
            raise ClusterError(_version_line(str(exc), shown)) from None
        raise ClusterError(f"--ray {shown}: could not join the Ray cluster at {target}: "
                           f"{one_line(exc, limit=200)}") from None
    except (ConnectionError, ray.exceptions.RayError) as exc:
        token = ("give the cluster's token: RAY_AUTH_TOKEN, or the file ~/.ray/auth_token"
                 if isinstance(exc, ray.exceptions.AuthenticationError) else
                 "if it was started with token authentication, set RAY_AUTH_MODE=token and "
                 "give its token (RAY_AUTH_TOKEN, or the file ~/.ray/auth_token)")
        raise ClusterError(f"--ray {shown}: could not join the Ray cluster at {target} "
                           f"({one_line(exc, limit=120)}); {token}") from None
    return Connection(shown, owned=True)


def disconnect(connection: Connection) -> None:
    """Undo :func:`connect`: shut down a Ray started here, leave a cluster joined here."""
    if connection.owned and "ray" in sys.modules:
        import ray

        ray.shutdown()
        connection.owned = False
