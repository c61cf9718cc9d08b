"""The cell: one point of a matrix, and the id that reads like it."""
from __future__ import annotations

from dataclasses import asdict, dataclass

PRECISIONS = ("fp32", "fp16", "bf16")
PHASES = ("prefill", "decode", "rank")
# Axes in the order a cell id spells them; `mode` and `kernel` appear only when not the default.
AXES = ("model", "backend", "mode", "precision", "batch", "seq_len", "phase", "kernel")
DEFAULT_MODE = "eager"
DEFAULT_KERNEL = "torch"


@dataclass(frozen=True, order=True)
class Cell:
    """model × backend × mode × precision × batch × seq_len × phase × kernel."""

    model: str
    backend: str
    mode: str
    precision: str
    batch: int
    seq_len: int
    phase: str
    kernel: str = DEFAULT_KERNEL

    @property
    def id(self) -> str:
        """`tiny-torch-cpu-fp32-b8-s32-prefill`; non-default mode/kernel are spelled in (`-compile`, `-ktriton`)."""
        parts = [self.model, self.backend]
        if self.mode != DEFAULT_MODE:
            parts.append(self.mode)
        parts += [self.precision, f"b{self.batch}", f"s{self.seq_len}", self.phase]
        if self.kernel != DEFAULT_KERNEL:
            parts.append(f"k{self.kernel}")
        return "-".join(parts)

    def as_dict(self) -> dict:
        return asdict(self) | {"id": self.id}
