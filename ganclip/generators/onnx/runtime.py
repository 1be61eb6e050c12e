"""onnxruntime behind ganclip's generator protocol: the session, the contract read off the
graph, and the frames it draws."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganclip.errors import BadInputError, one_line
from ganclip.generators.common import to_uint8

log = logging.getLogger(__name__)

CONTRACT = ("an ONNX generator takes inputs z [B, dim_z], y [B, n_classes] (a conditional "
            "model only) and truncation [B], all float32, and gives one output images "
            "[B, 3, H, W] in [-1, 1]")
FLOAT = "tensor(float)"  # onnxruntime's name for float32
OUTPUT_FLOATS = (FLOAT, "tensor(float16)", "tensor(double)")
RANKS = {"z": 2, "y": 2, "truncation": 1}  # the contract's inputs and their ranks
CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"
QUIET_LOGS = 3  # onnxruntime's log severity: errors only (its warnings are not the user's)
PROBE_CLASS = 0  # the probe batch draws class 0 (or no class) at z = 0, truncation 1


def onnxruntime(path: Path):
    """The onnxruntime module; a one-line error saying how to install it when missing."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise BadInputError(f"--model {path} needs onnxruntime: pip install "
                            "'ganclip[onnx]'") from None
    return ort


def wants_cuda(device) -> bool:
    """Whether ``device`` (a torch device string) asks for a CUDA GPU."""
    return str(device).split(":")[0] == "cuda"


def open_session(path: Path, *, device: str = "cpu"):
    """An onnxruntime session of ``path``: on the CUDA provider for a ``cuda`` device when
    onnxruntime has it (else the CPU, with a warning), on the CPU otherwise."""
    ort = onnxruntime(path)
    providers = [CPU]
    if wants_cuda(device):
        if CUDA in ort.get_available_providers():
            index = int(str(device).split(":")[1]) if ":" in str(device) else 0
            providers = [(CUDA, {"device_id": index}), CPU]
        else:
            log.warning(f"{path}: this onnxruntime has no CUDA provider (pip install "
                        "onnxruntime-gpu); drawing on the CPU")
    options = ort.SessionOptions()
    options.log_severity_level = QUIET_LOGS
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime's own errors have no common public root
        raise BadInputError(f"--model {path}: not an ONNX model onnxruntime can run "
                            f"({one_line(exc, limit=200)}); {CONTRACT}") from None
    return session


@dataclass(frozen=True)
class Contract:
    """What a graph takes and gives, as ganclip calls it."""

    dim_z: int
    n_classes: int  # 0: no y input
    batch: int | None  # a batch size fixed in the graph; None: any
    height: int | None  # None: dynamic, found by a probe batch at load
    width: int | None
    output: str  # the output's name


def _static(dim) -> int | None:
    """A dimension fixed in the graph, else None (onnxruntime gives a name or None)."""
    return dim if isinstance(dim, int) and dim > 0 else None


def _dtype(name: str) -> str:
    """onnxruntime's ``tensor(int64)`` as ``int64``."""
    return name.removeprefix("tensor(").removesuffix(")")


def _shape(node) -> str:
    return f"[{', '.join(str(d) if d is not None else '?' for d in node.shape)}]"


def read_contract(session, path: Path) -> Contract:
    """The :class:`Contract` of a session's graph; one line naming the file and every way
    it breaks the contract otherwise."""
    inputs = {node.name: node for node in session.get_inputs()}
    problems = [f"input '{name}' is not one of z, y, truncation"
                for name in inputs if name not in RANKS]
    problems += [f"it has no input '{name}'" for name in ("z", "truncation")
                 if name not in inputs]
    for name, node in inputs.items():
        if name in RANKS and len(node.shape) != RANKS[name]:
            problems.append(f"{name} is {_shape(node)}, rank {len(node.shape)} not "
                            f"{RANKS[name]}")
        elif name in RANKS and node.type != FLOAT:
            problems.append(f"{name} is {_dtype(node.type)}, not float32")
    widths = {name: _static(inputs[name].shape[1]) for name in ("z", "y")
              if name in inputs and len(inputs[name].shape) == RANKS[name]}
    problems += [f"{name}'s width is dynamic ({_shape(inputs[name])}); export it fixed"
                 for name, width in widths.items() if width is None]
    outputs = session.get_outputs()
    named = [node for node in outputs if node.name == "images"]
    output = named[0] if named else outputs[0] if len(outputs) == 1 else None
    if output is None:
        problems.append(f"it has {len(outputs)} outputs ({', '.join(o.name for o in outputs)}) "
                        "and none is called images")
    elif len(output.shape) != 4 or _static(output.shape[1]) not in (3, None):
        problems.append(f"its output {output.name} is {_shape(output)}, not [B, 3, H, W]")
    elif output.type not in OUTPUT_FLOATS:
        problems.append(f"its output {output.name} is {_dtype(output.type)}, not float")
    if problems:
        raise BadInputError(f"--model {path}: {'; '.join(problems)}; {CONTRACT}")
    batches = {_static(node.shape[0]) for node in inputs.values()}
    return Contract(dim_z=widths["z"], n_classes=widths.get("y") or 0,
                    batch=max(batches - {None}, default=None),
                    height=_static(output.shape[2]), width=_static(output.shape[3]),
                    output=output.name)


class OnnxGenerator:
    """An ONNX graph with ganclip's generator protocol.

    Parameters
    ----------
    session : onnxruntime.InferenceSession of the file
    contract : Contract, read from it (:func:`read_contract`)
    path : Path of the file, for messages and the name
    """

    def __init__(self, session, contract: Contract, *, path: Path):
        self.session, self.contract, self.path = session, contract, path
        self.name = str(path)
        self.dim_z, self.n_classes = contract.dim_z, contract.n_classes
        if contract.height and contract.width:
            self.size = (contract.width, contract.height)
        else:  # a dynamic H, W: what one batch comes out as
            n = contract.batch or 1
            y = np.zeros((n, self.n_classes), np.float32)
            y[:, PROBE_CLASS:PROBE_CLASS + 1] = 1
            probe = self._run(np.zeros((n, self.dim_z), np.float32), y, np.ones(n, np.float32))
            self.size = (probe.shape[3], probe.shape[2])
            log.debug(f"{path}: draws {self.size[0]}x{self.size[1]} frames")

    def __call__(self, z: np.ndarray, y: np.ndarray, truncation: np.ndarray) -> np.ndarray:
        """Draw a batch of frames.

        Parameters
        ----------
        z : np.ndarray [shape=(B, dim_z)], float32 unit latent
        y : np.ndarray [shape=(B, n_classes)], float32 class weights (ignored, and not
            passed, when ``n_classes`` is 0)
        truncation : np.ndarray [shape=(B,)], float32 in (0, 1]

        Returns
        -------
        frames : np.ndarray [shape=(B, H, W, 3)], uint8 RGB, ``(x + 1) · 127.5`` rounded
        """
        import torch

        z = np.ascontiguousarray(z, np.float32)
        y = np.ascontiguousarray(y, np.float32)
        t = np.ascontiguousarray(np.broadcast_to(truncation, (len(z),)), np.float32)
        if z.ndim != 2 or z.shape[1] != self.dim_z or (
                self.n_classes and y.shape != (len(z), self.n_classes)):
            raise BadInputError(f"{self.name}: expected z [B, {self.dim_z}] and y "
                                f"[B, {self.n_classes}], got {z.shape} and {y.shape}")
        step = self.contract.batch or len(z)
        images = np.concatenate([self._run(z[i:i + step], y[i:i + step], t[i:i + step])
                                 for i in range(0, len(z), step)])
        return to_uint8(torch.from_numpy(images))

    def _run(self, z, y, t) -> np.ndarray:
        """``[n, 3, H, W]`` float for ``n`` frames, padded to a batch fixed in the graph."""
        n, fixed = len(z), self.contract.batch
        if fixed and n < fixed:  # the last frame repeated; its copies are dropped
            z, y, t = (np.concatenate([a, np.repeat(a[-1:], fixed - n, axis=0)])
                       for a in (z, y, t))
        feeds = {"z": z, "truncation": t, **({"y": y} if self.n_classes else {})}
        try:
            (images,) = self.session.run([self.contract.output], feeds)
        except Exception as exc:  # onnxruntime's errors have no common public root
            raise BadInputError(f"--model {self.path} failed to draw: "
                                f"{one_line(exc, limit=200)}") from None
        if images.ndim != 4 or images.shape[:2] != (len(z), 3):
            raise BadInputError(f"--model {self.path} drew {list(images.shape)} for a batch "
                                f"of {len(z)}; {CONTRACT}")
        return images[:n]
