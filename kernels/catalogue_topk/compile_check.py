"""Compile the catalogue top-k kernels for a GPU architecture without a GPU: does each config build, and at
what cost.

``compile_kernels(arch=90)`` builds the scan at every GPU tile config and the finish, per dtype, with the
signature and specialisation the launcher gives them at the benchmark's shape (d = 256, 16-byte aligned
pointers and strides), through ``triton.compile`` with an explicit target: no driver is touched. Resource use
comes from ptxas (``-v``) on the PTX, the same assembler Triton ships; shared memory from Triton's metadata.
Must run with TRITON_INTERPRET unset (the interpreter replaces the kernels), e.g. from the checkout's root

    python -m kernels.catalogue_topk.compile_check

Imported by the compile test and by hand; nothing at runtime imports it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from . import triton as impl

_TRITON_TYPES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
# Arguments the launcher specialises as 16-divisible at the benchmark's shape (aligned tensors, d = 256).
_ALIGNED = (
    "states_ptr",
    "table_ptr",
    "chunk_key_ptr",
    "chunk_sec_ptr",
    "group_top_ptr",
    "group_next_ptr",
    "group_opt_ptr",
    "scores_ptr",
    "items_ptr",
    "stride_s",
    "stride_t",
)


def ptxas_path(arch: int = 90) -> str | None:
    """The ptxas Triton compiles ``arch`` with (its bundled one unless the environment names another), or
    None."""
    try:
        from triton.backends.nvidia.compiler import get_ptxas  # noqa: PLC0415  (absent without the NVIDIA backend)

        path = get_ptxas(arch).path
    except Exception:  # noqa: BLE001  (missing or unusable: the caller skips)
        return None
    return path if path and os.path.exists(path) else None


def _modes(dtype: torch.dtype, dim: int) -> dict:
    """The mode constexprs the launcher derives from the shape (as in ``catalogue_topk_triton``)."""
    d_pad = max(16, triton.next_power_of_2(dim))
    block_k = min(impl.BLOCK_K, d_pad)
    return {
        "D_PAD": d_pad,
        "FULL_D": dim == d_pad,
        "BLOCK_K": block_k,
        "EVEN_K": dim % block_k == 0,
        "RESIDENT": d_pad * dtype.itemsize <= impl.ROW_BYTES,
        "UPCAST": False,
        "PRECISION": "tf32x3" if dtype == torch.float32 else "tf32",
    }


def _source(fn, types: dict, constexprs: dict) -> ASTSource:
    names = fn.arg_names
    signature = {n: ("constexpr" if n in constexprs else types.get(n, "i32")) for n in names}
    attrs = {(names.index(n),): [["tt.divisibility", 16]] for n in _ALIGNED if n in names}
    return ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)


def _resources(ptx: str, arch: int) -> dict:
    """Registers, spill bytes and stack from ``ptxas -v`` on the kernel's PTX."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "k.ptx")
        with open(src, "w") as fh:
            fh.write(ptx)
        out = subprocess.run(
            [ptxas_path(arch), f"-arch=sm_{arch}a", "-v", src, "-o", os.path.join(tmp, "k.cubin")],
            capture_output=True,
            text=True,
            check=True,
        )
    log = out.stdout + out.stderr
    regs = re.search(r"Used (\d+) registers", log)
    spill = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    stack = re.search(r"(\d+) bytes stack frame", log)
    return {
        "regs": int(regs.group(1)) if regs else None,
        "spill_stores": int(spill.group(1)) if spill else None,
        "spill_loads": int(spill.group(2)) if spill else None,
        "stack": int(stack.group(1)) if stack else None,
    }


def _scan_pointers(elt: str) -> dict:
    """The pointer arguments the scan writes and the finish reads: inputs, then the scan's kept keys."""
    return {
        "states_ptr": f"*{elt}",
        "table_ptr": f"*{elt}",
        "chunk_key_ptr": "*i64",
        "chunk_sec_ptr": "*fp32",
        "group_top_ptr": "*i64",
        "group_next_ptr": "*i64",
        "group_opt_ptr": "*i64",
    }


def compile_scan(dtype: torch.dtype, config: triton.Config, *, dim: int = 256, arch: int = 90):
    """The scan at one tile config for ``dtype``: (compiled kernel, resources dict)."""
    elt = _TRITON_TYPES[dtype]
    types = _scan_pointers(elt)
    constexprs = {"G": impl.CHUNK, "R": impl.RANK, **_modes(dtype, dim), **config.kwargs}
    src = _source(impl.catalogue_scan_kernel, types, constexprs)
    options = {"num_warps": config.num_warps, "num_stages": config.num_stages}
    return _build(src, options, arch)


def compile_finish(
    dtype: torch.dtype,
    *,
    k: int = 100,
    groups: int = impl.TARGET_GROUPS,
    span: int = 62,
    dim: int = 256,
    arch: int = 90,
):
    """The finish for ``dtype`` at the benchmark's shape (N = 1M: 7813 chunks in 127 groups of 62)."""
    elt = _TRITON_TYPES[dtype]
    types = {
        **_scan_pointers(elt),
        "scores_ptr": f"*{elt}",
        "items_ptr": "*i64",
    }
    constexprs = {
        "G": impl.CHUNK,
        "R": impl.RANK,
        **impl.finish_sizes(k, groups, span),
        **_modes(dtype, dim),
        "BLOCK_M": impl.RESCORE_TILE[0],
        "BLOCK_N": impl.RESCORE_TILE[1],
        "INTERPRET": False,
    }
    return _build(_source(impl.catalogue_finish_kernel, types, constexprs), {"num_warps": 4}, arch)


def _build(src: ASTSource, options: dict, arch: int):
    compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options)
    return compiled, {"shared": compiled.metadata.shared, **_resources(compiled.asm["ptx"], arch)}


def compile_kernels(arch: int = 90, dtypes=tuple(_TRITON_TYPES), configs=None) -> list[dict]:
    """Every shipped kernel × dtype (× tile config for the scan) at d = 256, then the other operand modes on
    fp16: d = 64 (masked nothing, narrow) and d = 1024 (too wide to keep on chip: both operands stream)."""
    cases = [(dtype, 256, config) for dtype in dtypes for config in configs or impl.GPU_CONFIGS]
    cases += [(torch.float16, 64, impl.GPU_CONFIGS[0]), (torch.float16, 1024, impl.GPU_CONFIGS[0])]
    records = []
    for dtype, dim, config in cases:
        pruned = impl._prune([config], {"states_ptr": torch.empty(0, dtype=dtype)}, **_modes(dtype, dim))
        if pruned != [config]:
            continue  # the autotuner drops it before it compiles
        compiled, res = compile_scan(dtype, config, dim=dim, arch=arch)
        records.append(_record("scan", dtype, dim, config, compiled, res))
    for dtype, dim in [(dtype, 256) for dtype in dtypes] + [(torch.float16, 64), (torch.float16, 1024)]:
        compiled, res = compile_finish(dtype, dim=dim, arch=arch)
        records.append(_record("finish", dtype, dim, "num_warps=4", compiled, res))
    return records


def _record(kernel: str, dtype, dim: int, config, compiled, res: dict) -> dict:
    if isinstance(config, triton.Config):
        config = (
            f"BLOCK_M={config.kwargs['BLOCK_M']} BLOCK_N={config.kwargs['BLOCK_N']} "
            f"num_warps={config.num_warps} num_stages={config.num_stages}"
        )
    return {
        "kernel": kernel,
        "dtype": str(dtype).replace("torch.", ""),
        "d": dim,
        "resident": _modes(dtype, dim)["RESIDENT"],
        "config": config,
        "wgmma": "wgmma" in compiled.asm["ptx"],
        **res,
    }


def main(argv: list[str] | None = None) -> int:
    """Print one line per compiled kernel (or, with --json, one JSON list); exit 3 where ptxas is missing."""
    import json

    argv = sys.argv[1:] if argv is None else argv
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        print("unset TRITON_INTERPRET: the interpreter replaces the kernels", file=sys.stderr)
        return 2
    if ptxas_path() is None:
        print("no ptxas for sm_90 (triton's NVIDIA backend ships one; TRITON_PTXAS_PATH names another)")
        return 3
    records = compile_kernels()
    if "--json" in argv:
        print(json.dumps(records))
    else:
        for r in records:
            print(" ".join(f"{k}={v}" for k, v in r.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
