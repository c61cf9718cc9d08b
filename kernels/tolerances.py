"""How close a kernel must come to its fp32 reference, per output dtype.

Both sides accumulate in fp32 and round once to the output dtype, so they differ by fp32 summation order
(≈ eps32 · terms) plus at most one rounding step of the output dtype: rtol covers the rounding step
(2^-10 for fp16, 2^-7 for bf16, with margin), atol the summation noise near zero, which grows like √terms for
sums of unit-variance terms.
"""

from __future__ import annotations

import math

import torch

#: (rtol, atol per √term) by dtype.
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float32: (1e-5, 1e-5),
    torch.float16: (2e-3, 1e-4),
    torch.bfloat16: (1.6e-2, 1e-4),
}


def tolerance(dtype: torch.dtype, *, terms: int = 1) -> dict[str, float]:
    """``rtol``/``atol`` keywords for ``torch.testing.assert_close`` of a sum of ``terms`` unit-scale
    terms."""
    if dtype not in TOLERANCES:
        raise ValueError(f"tolerance | no tolerance for dtype={dtype}; known: {tuple(TOLERANCES)}")
    rtol, atol = TOLERANCES[dtype]
    return {"rtol": rtol, "atol": atol * math.sqrt(max(terms, 1))}
