"""ONNX generators: ``--model FILE.onnx`` runs a generator exported to ONNX with onnxruntime.

The contract a file must keep (checked when its spec is made, before any analysis):

- inputs ``z`` [B, dim_z] float32, ganclip's unit latent (roughly in [-2, 2]);
  ``y`` [B, n_classes] float32 class weights, only in a conditional model (an
  unconditional one has no ``y`` and ganclip passes nothing); ``truncation`` [B]
  float32 in (0, 1], which the model applies as it was trained to (BigGAN: the
  noise is ``z × truncation``)
- one output ``images`` [B, 3, H, W], float in [-1, 1]

``dim_z`` and ``n_classes`` must be fixed in the graph; the batch may be dynamic or
fixed (ganclip then feeds batches of that many), and so may ``H`` and ``W`` (found by
drawing one probe batch at load). The frames are still pictures: the render moves its
camera over them and scales them to ``--size``.

onnxruntime is an optional extra (``pip install 'ganclip[onnx]'``), imported only when a
file is read; the CUDA provider runs a ``--device cuda`` render when onnxruntime has it.
"""

from __future__ import annotations

from pathlib import Path

from ganclip.errors import BadInputError
from ganclip.generators import GeneratorSpec
from ganclip.generators.onnx import runtime
from ganclip.generators.onnx.runtime import CONTRACT, OnnxGenerator

__all__ = ["CONTRACT", "OnnxGenerator", "spec_for"]

PRECISIONS = ("fp32",)  # the graph's own arithmetic: ganclip casts nothing


def spec_for(path: Path) -> GeneratorSpec:
    """The spec of an ONNX generator file, its widths read from the graph.

    The file is opened once here (a CPU session, kept for the first CPU load); a file
    that is not ONNX, or breaks the contract (:data:`CONTRACT`), gets a one-line
    :class:`~ganclip.errors.BadInputError` naming it.

    Parameters
    ----------
    path : Path of the ``.onnx`` file (``--model PATH``)

    Returns
    -------
    GeneratorSpec, named after the resolved path
    """
    path = Path(path)
    session = runtime.open_session(path, device="cpu")
    contract = runtime.read_contract(session, path)
    kept = [session]  # handed to the first CPU load, then let go

    def prepare(weights=None, *, download: bool = True, quiet: bool = True) -> Path:
        if weights is not None:
            raise BadInputError(f"--model {path} holds its own weights; leave out --weights")
        return path.resolve()  # a resumed render checks the file is the same (its sha256)

    def load(checkpoint, *, size, seed: int, device: str, precision: str,
             quiet: bool) -> OnnxGenerator:
        opened = kept.pop() if kept else None
        if opened is None or runtime.wants_cuda(device):
            opened = runtime.open_session(path, device=device)
        return OnnxGenerator(opened, contract, path=path)

    h, w = contract.height, contract.width
    shape = f"{w}x{h}" if h and w else "its size found when it loads"
    kind = f"{contract.n_classes} classes" if contract.n_classes else "unconditional"
    return GeneratorSpec(
        name=str(path.resolve()), description=f"ONNX model, {contract.dim_z}-d z, {kind}, "
        f"{shape}", dim_z=contract.dim_z, n_classes=contract.n_classes,
        native_size=h if h and h == w else None, precisions=PRECISIONS, load=load,
        prepare=prepare, status=lambda: "model file")
