"""LoadGen's accuracy mode, checked by our oracle: every sample of the Query Sample Library, as LoadGen logged
the SUT's answer in mlperf_log_accuracy.json, against the library's fp32 reference (bench.oracle.compare:
value error and top-k agreement at the cell's precision's tolerance)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from genrec_bench.bench.loadgen.completion import decode
from genrec_bench.bench.loadgen.qsl import QuerySampleLibrary
from genrec_bench.bench.oracle import Numerics, compare, failed

REFERENCE = "fp32 on CPU over every sample of LoadGen's accuracy log"


def check(entries: list[dict], qsl: QuerySampleLibrary, tolerance: dict) -> tuple[Numerics, dict]:
    """(verdict, record section) of an accuracy log's `entries` against `qsl`'s reference."""
    answers: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for entry in entries:
        answers[int(entry["qsl_idx"])] = decode(bytes.fromhex(entry["data"]))
    missing = sorted(set(range(qsl.count)) - set(answers))
    section = {
        "samples_logged": len(entries),
        "samples_checked": len(answers),
        "qsl_count": qsl.count,
        "missing": missing[:20],
    }
    if not answers:
        numerics = failed(
            REFERENCE, tolerance, "LoadGen's accuracy log holds no answers (did every call fail?)"
        )
        return numerics, section | {"passed": False, "numerics": numerics.as_dict()}
    order = sorted(answers)
    ks = {len(answers[i][1]) for i in order}
    if len(ks) != 1:
        raise ValueError(f"answers of different k in one accuracy log: {sorted(ks)}")
    scores = torch.from_numpy(np.stack([answers[i][0] for i in order])).float()
    items = torch.from_numpy(np.stack([answers[i][1] for i in order])).long()
    numerics = compare(
        qsl.reference().rows(torch.as_tensor(order)), scores, items, tolerance, reference=REFERENCE
    )
    if missing:
        numerics = dataclasses.replace(
            numerics,
            passed=False,
            message=f"{len(missing)} of {qsl.count} samples have no answer in the accuracy "
            f"log" + ("" if numerics.passed else f"; {numerics.message}"),
        )
    return numerics, section | {"passed": numerics.passed, "numerics": numerics.as_dict()}
