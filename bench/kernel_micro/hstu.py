"""HSTU attention micro-benchmarks on a CUDA GPU: ``python -m genrec_bench.bench.kernel_micro.hstu --json
OUT.json``.

- prefill: one layer of causal HSTU attention at a workload's lengths (default the ``base`` preset's, seed
  1234: 72,270 tokens over 256 users, H=8, dh=32). The Triton kernel runs jagged on the model's layout (q, k,
  v as column views of one projection); the torch providers run the model's padded [B, H, S, S] form eagerly
  and compiled on padded copies made outside the timing, and torch's flash SDPA (softmax, causal, padded) is
  timed as a reference point for what a tuned attention kernel costs (it computes a different function, so it
  is not checked).
- decode: one decode step of every layer (default 4) on the paged KV cache, against the padded cache the
  torch model concatenates to, and flash SDPA over that padded cache.

Timing, rotation over input copies larger than L2 and the record shape are bench/kernel_micro/common.py's;
each record adds the FLOPs the op must do (causal, jagged: 4·dh per visible query-key pair and head) and
TFLOP/s on them. Every provider is first checked against the fp32 reference; a wrong kernel is recorded, not
timed.
"""

from __future__ import annotations

import argparse
import math
import sys

import torch
import torch.nn.functional as F

from genrec_bench.bench.kernel_micro import common
from genrec_bench.bench.kernel_micro.common import copies as _copies
from genrec_bench.bench.kernel_micro.common import note_config, parse, run_providers, write
from genrec_bench.kernels.hstu_attention import (
    assert_within_bound,
    hstu_attention,
    hstu_attention_reference,
    hstu_decode_attention,
    hstu_decode_reference,
    jagged_positions,
    paged_caches_from_jagged,
)


def workload_lengths(model: str, phase: str, batch: int, seq_len: int, seed: int = 1234) -> torch.Tensor:
    """History lengths of a harness cell (the same draw the matrix cells use)."""
    from genrec_bench.models import draw, preset

    return draw(preset(model), phase, batch, seq_len, seed=seed)["lengths"]


def causal_flops(lengths: torch.Tensor, heads: int, head_dim: int) -> float:
    """FLOPs of causal HSTU attention over these rows: 2·dh for q·k and 2·dh for w·v per visible pair."""
    n = lengths.double()
    return float(4 * head_dim * heads * (n * (n + 1) / 2).sum())


def padded_hstu(q, k, v, mask, count, scale):
    """The model's padded attention core (HSTUBlock.attend without the projections): [B, H, S, dh] → same."""
    weights = F.silu(torch.matmul(q, k.transpose(-1, -2)) * scale).masked_fill(~mask, 0.0) / count
    return torch.matmul(weights, v)


def flash_sdpa(q, k, v, causal: bool):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def _padded(x: torch.Tensor, user, pos, batch: int, width: int) -> torch.Tensor:
    out = x.new_zeros(batch, width, *x.shape[1:])
    out[user, pos] = x
    return out.transpose(1, 2).contiguous()


def bench_prefill(lengths, heads, head_dim, dtype, hbm_gbps, *, sweep: bool) -> list[dict]:
    """One layer of causal HSTU attention: Triton jagged vs the padded torch forms and flash SDPA."""
    from genrec_bench.kernels.hstu_attention import triton as impl

    batch, width = lengths.numel(), int(lengths.max())
    offsets = torch.zeros(batch + 1, dtype=torch.int64, device=common.DEVICE)
    offsets[1:] = torch.cumsum(lengths.to(common.DEVICE), 0)
    total, dim = int(offsets[-1]), heads * head_dim
    user, pos = jagged_positions(offsets, total)
    gen = torch.Generator(device=common.DEVICE).manual_seed(0)
    scale = 1.0 / math.sqrt(head_dim)
    steps = torch.arange(width, device=common.DEVICE)
    mask = (steps[None, :] <= steps[:, None]).view(1, 1, width, width)
    count = (steps + 1).to(dtype).view(1, 1, width, 1)

    def make(_):
        projection = torch.randn(total, 4 * dim, device=common.DEVICE, generator=gen).to(dtype)
        q, k, v = (projection[:, i * dim : (i + 1) * dim].view(total, heads, head_dim) for i in (2, 3, 1))
        return (q, k, v, *(_padded(t, user, pos, batch, width) for t in (q, k, v)))

    inputs = _copies(make, 7 * total * dim * 2)
    compiled = torch.compile(padded_hstu, dynamic=False)
    providers = {
        "triton": lambda q, k, v, *_: hstu_attention(q, k, v, offsets, max_seq_len=width, kernel="triton"),
        "torch-eager-padded": lambda q, k, v, qp, kp, vp: padded_hstu(qp, kp, vp, mask, count, scale),
        "torch-compile-padded": lambda q, k, v, qp, kp, vp: compiled(qp, kp, vp, mask, count, scale),
        "torch-sdpa-flash-padded": lambda q, k, v, qp, kp, vp: flash_sdpa(qp, kp, vp, causal=True),
    }
    if sweep:
        configs = [
            {**c.kwargs, "num_warps": c.num_warps, "num_stages": c.num_stages} for c in impl.SWEEP_CONFIGS
        ]
        configs += [{**configs[1], "FAST_SILU": False}]
        for cfg in configs:
            name = "triton-" + "-".join(f"{k}{v}" for k, v in cfg.items())
            providers[name] = lambda q, k, v, *_, cfg=cfg: impl.hstu_attention_triton(
                q, k, v, offsets, max_seq_len=width, config=cfg
            )
    q0, k0, v0 = inputs[0][:3]
    want = hstu_attention_reference(q0, k0, v0, offsets)
    magnitude = hstu_attention_reference(q0, k0, v0, offsets, magnitude=True)

    def check(out, _args):
        if out.dim() == 4:  # padded [B, H, S, dh] back to jagged rows
            out = out.transpose(1, 2)[user, pos]
        assert_within_bound(out, want, magnitude, "hstu_attention")

    checks = {name: check for name in providers if name != "torch-sdpa-flash-padded"}
    shape = {
        "B": batch,
        "H": heads,
        "dh": head_dim,
        "tokens": total,
        "max_len": width,
        "mean_len": round(total / batch, 2),
    }
    records = run_providers(
        "hstu_attention",
        providers,
        checks,
        inputs,
        shape=shape,
        dtype=dtype,
        nbytes=4 * total * dim * 2,
        flops=causal_flops(lengths, heads, head_dim),
        hbm_gbps=hbm_gbps,
    )
    note_config(records, impl.hstu_attention_autotuned)
    return records


def bench_decode(lengths, layers, heads, head_dim, dtype, hbm_gbps, *, sweep: bool) -> list[dict]:
    """One decode step through every layer: Triton on the paged cache vs the torch model's padded cache."""
    from genrec_bench.kernels.hstu_attention import decode_triton as impl

    batch, width = lengths.numel(), int(lengths.max()) + 1
    lengths = lengths.to(common.DEVICE)
    offsets = torch.zeros(batch + 1, dtype=torch.int64, device=common.DEVICE)
    offsets[1:] = torch.cumsum(lengths, 0)
    total, dim = int(offsets[-1]), heads * head_dim
    gen = torch.Generator(device=common.DEVICE).manual_seed(1)
    scale = 1.0 / math.sqrt(head_dim)
    slots = torch.arange(width + 1, device=common.DEVICE)
    mask = ((slots[None, :] < lengths[:, None]) | (slots[None, :] == width)).view(batch, 1, 1, width + 1)
    count = (lengths + 1).to(dtype).view(batch, 1, 1, 1)

    def make(_):
        history = [
            [
                torch.randn(total, heads, head_dim, device=common.DEVICE, generator=gen).to(dtype)
                for _ in range(layers)
            ]
            for _ in range(2)
        ]
        k_cache, v_cache = paged_caches_from_jagged(*history, offsets, lengths, width=width)
        projection = torch.randn(layers, batch, 4 * dim, device=common.DEVICE, generator=gen).to(dtype)
        q, k, v = (
            projection[..., i * dim : (i + 1) * dim].view(layers, batch, heads, head_dim) for i in (2, 3, 1)
        )
        padded = [
            torch.stack([c.history(layer, lengths, width).transpose(1, 2) for layer in range(layers)])
            for c in (k_cache, v_cache)
        ]  # [L, B, H, S, dh], as the torch model's cache
        return q, k, v, k_cache, v_cache, *padded

    def triton_step(q, k, v, kc, vc, *_, splits=None, cfg=None):
        if splits is None and cfg is None:
            return torch.stack(
                [
                    hstu_decode_attention(q[i], k[i], v[i], kc, vc, lengths, layer=i, kernel="triton")
                    for i in range(layers)
                ]
            )
        return torch.stack(
            [
                impl.hstu_decode_triton(
                    q[i], k[i], v[i], kc, vc, lengths, layer=i, splits=splits or 1, config=cfg
                )
                for i in range(layers)
            ]
        )

    def torch_step(q, k, v, kc, vc, kp, vp):
        out = []
        for i in range(layers):
            keys, values = torch.cat([kp[i], k[i].unsqueeze(2)], 2), torch.cat([vp[i], v[i].unsqueeze(2)], 2)
            out.append(padded_hstu(q[i].unsqueeze(2), keys, values, mask, count, scale).squeeze(2))
        return torch.stack(out)

    def sdpa_step(q, k, v, kc, vc, kp, vp):
        return torch.stack(
            [
                flash_sdpa(
                    q[i].unsqueeze(2),
                    torch.cat([kp[i], k[i].unsqueeze(2)], 2),
                    torch.cat([vp[i], v[i].unsqueeze(2)], 2),
                    causal=False,
                )
                for i in range(layers)
            ]
        )

    per_copy = 2 * layers * (total + batch * width) * dim * 2
    inputs = _copies(make, per_copy)
    compiled = torch.compile(torch_step, dynamic=False)
    providers = {
        "triton": triton_step,
        "torch-eager-padded": torch_step,
        "torch-compile-padded": compiled,
        "torch-sdpa-flash-padded": sdpa_step,
    }
    for splits in (2, 4):
        providers[f"triton-splits{splits}"] = lambda *a, s=splits: triton_step(*a, splits=s)
    if sweep:
        for c in impl.SWEEP_CONFIGS:
            cfg = {**c.kwargs, "num_warps": c.num_warps, "num_stages": c.num_stages}
            providers["triton-" + "-".join(f"{k}{v}" for k, v in cfg.items())] = lambda *a, cfg=cfg: (
                triton_step(*a, cfg=cfg)
            )
    q0, k0, v0, kc0, vc0 = inputs[0][:5]
    histories = [[c.history(i, lengths, width - 1) for c in (kc0, vc0)] for i in range(layers)]
    want = torch.stack(
        [hstu_decode_reference(q0[i], k0[i], v0[i], *histories[i], lengths) for i in range(layers)]
    )
    magnitude = torch.stack(
        [
            hstu_decode_reference(q0[i], k0[i], v0[i], *histories[i], lengths, magnitude=True)
            for i in range(layers)
        ]
    )

    def check(out, _args):
        assert_within_bound(out, want, magnitude, "hstu_decode_attention")

    checks = {name: check for name in providers if name != "torch-sdpa-flash-padded"}
    history_bytes = 2 * total * dim * 2
    nbytes = layers * (history_bytes + 4 * batch * dim * 2 + 2 * batch * dim * 2)
    flops = layers * 4 * head_dim * heads * float((lengths + 1).sum())
    shape = {
        "B": batch,
        "layers": layers,
        "H": heads,
        "dh": head_dim,
        "history_tokens": total,
        "page_size": kc0.page_size,
    }
    records = run_providers(
        "hstu_decode",
        providers,
        checks,
        inputs,
        shape=shape,
        dtype=dtype,
        nbytes=nbytes,
        flops=flops,
        hbm_gbps=hbm_gbps,
    )
    note_config(records, impl.hstu_decode_autotuned)
    return records


def main(argv: list[str] | None = None) -> int:
    """Run the HSTU micro-benchmarks and write one JSON file."""
    parser = argparse.ArgumentParser(
        prog="python -m genrec_bench.bench.kernel_micro.hstu", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--ops", default="prefill,decode", help="comma-separated: prefill, decode")
    parser.add_argument(
        "--model", default="base", help="preset whose workload lengths are used (default base)"
    )
    parser.add_argument("--dtypes", default="float16", help="comma-separated torch dtypes (default float16)")
    parsed = parse(parser, argv)
    if parsed is None:
        return 2
    args, info, hbm = parsed
    from genrec_bench.models import preset

    cfg = preset(args.model)
    batch = 16 if args.quick else 256
    heads, head_dim, seq_len = cfg.num_heads, cfg.head_dim, cfg.max_seq_len
    records: list[dict] = []
    for i, dtype in enumerate(getattr(torch, name) for name in args.dtypes.split(",")):
        if "prefill" in args.ops:
            lengths = workload_lengths(args.model, "prefill", batch, seq_len)
            records += bench_prefill(
                lengths, heads, head_dim, dtype, hbm["gbps"], sweep=args.sweep and i == 0
            )
            write(args.json, info, hbm, records)  # after each op, so a run cut short keeps what it measured
        if "decode" in args.ops:
            lengths = workload_lengths(args.model, "decode", batch, seq_len)
            records += bench_decode(
                lengths, cfg.num_layers, heads, head_dim, dtype, hbm["gbps"], sweep=args.sweep and i == 0
            )
    write(args.json, info, hbm, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
