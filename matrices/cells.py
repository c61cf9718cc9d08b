"""The cell: one point of a matrix, and the id that reads like it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

PRECISIONS = ("fp32", "fp16", "bf16")
PHASES = ("prefill", "decode", "rank")
# Axes in the order a cell id spells them; `mode`, `kernel`, `embedding` and `scenario` appear only when not
# the default.
AXES = (
    "model",
    "backend",
    "mode",
    "precision",
    "batch",
    "seq_len",
    "phase",
    "kernel",
    "embedding",
    "scenario",
)
DEFAULT_MODE = "eager"
DEFAULT_KERNEL = "torch"
# No embedding label: the preset's own placement (device for every shipped preset), today's ids unchanged.
DEFAULT_EMBEDDING = ""
# MLPerf LoadGen scenarios (bench/loadgen/); "" is the per-call timing every cell had before them, written
# `none` in a matrix.
SCENARIOS = ("singlestream", "multistream", "server", "offline")
DEFAULT_SCENARIO = ""


@dataclass(frozen=True, order=True)
class Cell:
    """model × backend × mode × precision × batch × seq_len × phase × kernel × embedding × scenario.

    In a scenario cell `batch` is the most users one call (or one request) carries: the batcher's largest
    bucket in process, the largest request a served query is split into."""

    model: str
    backend: str
    mode: str
    precision: str
    batch: int
    seq_len: int
    phase: str
    kernel: str = DEFAULT_KERNEL
    embedding: str = DEFAULT_EMBEDDING
    scenario: str = DEFAULT_SCENARIO

    @property
    def id(self) -> str:
        """`tiny-torch-cpu-fp32-b8-s32-prefill`; non-default mode/kernel/embedding/scenario are spelled in
        (`-compile`, `-ktriton`, `-emb-cached-10pct`, `-server`)."""
        parts = [self.model, self.backend]
        if self.mode != DEFAULT_MODE:
            parts.append(self.mode)
        parts += [self.precision, f"b{self.batch}", f"s{self.seq_len}", self.phase]
        if self.kernel != DEFAULT_KERNEL:
            parts.append(f"k{self.kernel}")
        if self.embedding != DEFAULT_EMBEDDING:
            parts.append(f"emb-{self.embedding}")
        if self.scenario != DEFAULT_SCENARIO:
            parts.append(self.scenario)
        return "-".join(parts)

    def as_dict(self) -> dict:
        return asdict(self) | {"id": self.id}
