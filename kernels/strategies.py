"""Hypothesis strategies for fuzzing the kernels against their references.

In the style of ``hypothesis.extra.numpy``: plural nouns, keyword-only ``min_*``/``max_*`` pairs, and argument
errors that name the argument, its value and the fix. Strategies draw only sizes, dtypes and a seed; the
tensor values are made from that seed with a ``torch.Generator`` on the CPU (then moved to the device), so a
failure replays on any machine and Hypothesis shrinks it through the seed. Nothing here touches a GPU when a
strategy is built, so strategies may be used inside ``@given(...)`` freely; pass the device to
``.tensors(device)``.

The case strategies (``interaction_cases()``, ``jagged_cases()``, ``hstu_cases()``, ``hstu_decode_cases()``,
``catalogue_cases()``) return frozen dataclasses whose repr is the whole counterexample: Hypothesis prints it
on failure.
"""

from __future__ import annotations

import dataclasses

import torch
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

__all__ = [
    "DTYPES",
    "CatalogueCase",
    "HstuCase",
    "HstuDecodeCase",
    "InteractionCase",
    "JaggedCase",
    "catalogue_cases",
    "dtypes",
    "hstu_cases",
    "hstu_decode_cases",
    "interaction_cases",
    "interaction_shapes",
    "jagged_cases",
    "jagged_lengths",
    "seeds",
]

#: The floating dtypes the kernels take.
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_MAX_SEED = 2**32 - 1


def _check_bounds(min_name: str, min_value: int, max_name: str, max_value: int, *, least: int = 0) -> None:
    """Validate a keyword-only min/max pair: ints, at least ``least``, min not above max."""
    for name, value in ((min_name, min_value), (max_name, max_value)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(
                f"{name}={value!r} must be an int; pass a whole number such as {name}={least}"
            )
        if value < least:
            raise InvalidArgument(f"{name}={value} is smaller than {least}; pass {name}>={least}")
    if min_value > max_value:
        raise InvalidArgument(
            f"{min_name}={min_value} is larger than {max_name}={max_value}; "
            f"pass {min_name}<={max_name} (e.g. {max_name}={min_value})"
        )


def dtypes(*, allowed: tuple[torch.dtype, ...] = DTYPES) -> st.SearchStrategy[torch.dtype]:
    """Floating dtypes the kernels take (fp32, fp16, bf16), shrinking towards the first of ``allowed``."""
    allowed = tuple(allowed)
    if not allowed:
        raise InvalidArgument(f"allowed={allowed!r} is empty; pass at least one of {DTYPES}")
    unknown = [d for d in allowed if d not in DTYPES]
    if unknown:
        raise InvalidArgument(
            f"allowed={allowed!r} holds {unknown}, which the kernels do not take; use {DTYPES}"
        )
    return st.sampled_from(allowed)


# The case strategies take a ``dtypes=`` argument, which shadows the function inside them.
_default_dtypes = dtypes


def seeds() -> st.SearchStrategy[int]:
    """Seeds for the ``torch.Generator`` that makes tensor values (shrinks towards 0)."""
    return st.integers(min_value=0, max_value=_MAX_SEED)


def interaction_shapes(
    *,
    min_batch: int = 1,
    max_batch: int = 8,
    min_features: int = 1,
    max_features: int = 40,
    min_dim: int = 1,
    max_dim: int = 160,
) -> st.SearchStrategy[tuple[int, int, int]]:
    """(B, F, D) shapes of the interaction input x [B, F, D].

    The defaults cross the kernel's tile edges (F across 16/32/64, D across 64/128) while staying cheap in
    Triton's CPU interpreter; F=1 (an empty triangle) and D=1 are included.
    """
    _check_bounds("min_batch", min_batch, "max_batch", max_batch, least=0)
    _check_bounds("min_features", min_features, "max_features", max_features, least=1)
    _check_bounds("min_dim", min_dim, "max_dim", max_dim, least=1)
    return st.tuples(
        st.integers(min_batch, max_batch),
        st.integers(min_features, max_features),
        st.integers(min_dim, max_dim),
    )


def jagged_lengths(
    *,
    min_rows: int = 1,
    max_rows: int = 16,
    min_length: int = 0,
    max_length: int = 32,
    max_long_length: int | None = None,
) -> st.SearchStrategy[list[int]]:
    """Row lengths of a jagged batch: lists of ``min_rows..max_rows`` ints.

    Mixes four shapes of batch, since each breaks kernels differently: independent lengths in
    [min_length, max_length] (shrinks to all-minimum), mostly-empty rows (when min_length is 0), all rows the
    same length, and one very long row (up to ``max_long_length``, default 8 × max_length) among short ones.
    """
    _check_bounds("min_rows", min_rows, "max_rows", max_rows, least=0)
    _check_bounds("min_length", min_length, "max_length", max_length, least=0)
    if max_long_length is None:
        max_long_length = max(8 * max_length, min_length)
    _check_bounds("max_length", max_length, "max_long_length", max_long_length, least=0)

    length = st.integers(min_length, max_length)
    rows = st.integers(min_rows, max_rows)
    shapes = [
        st.lists(length, min_size=min_rows, max_size=max_rows),
        st.tuples(rows, length).map(lambda t: [t[1]] * t[0]),
    ]
    if min_length == 0:
        mostly_empty = st.one_of(st.just(0), st.just(0), st.just(0), length)
        shapes.append(st.lists(mostly_empty, min_size=min_rows, max_size=max_rows))
    if max_rows >= 1:
        shapes.append(_one_long_row(length, st.integers(max_length, max_long_length), min_rows, max_rows))
    return st.one_of(shapes)


@st.composite
def _one_long_row(draw, length, long_length, min_rows: int, max_rows: int) -> list[int]:
    """Short rows with one long row at a drawn position."""
    short = draw(st.lists(length, min_size=max(min_rows - 1, 0), max_size=max_rows - 1))
    at = draw(st.integers(0, len(short)))
    return short[:at] + [draw(long_length)] + short[at:]


@dataclasses.dataclass(frozen=True)
class InteractionCase:
    """One interaction input: sizes, dtype and the seed its values come from."""

    batch: int
    features: int
    dim: int
    dense_dim: int  # 0: no dense vector
    dtype: torch.dtype
    seed: int

    def tensors(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor | None]:
        """(x [B, F, D], dense [B, E] or None), made on the CPU from the seed, then moved to ``device``."""
        gen = torch.Generator().manual_seed(self.seed)
        x = torch.randn(self.batch, self.features, self.dim, generator=gen)
        dense = torch.randn(self.batch, self.dense_dim, generator=gen) if self.dense_dim else None
        x = x.to(device=device, dtype=self.dtype)
        return x, (None if dense is None else dense.to(device=device, dtype=self.dtype))


def interaction_cases(
    *,
    shapes: st.SearchStrategy[tuple[int, int, int]] | None = None,
    dtypes: st.SearchStrategy[torch.dtype] | None = None,
    min_dense_dim: int = 0,
    max_dense_dim: int = 8,
) -> st.SearchStrategy[InteractionCase]:
    """Interaction inputs: a shape from ``shapes``, a dtype from ``dtypes``, a dense width and a seed."""
    _check_bounds("min_dense_dim", min_dense_dim, "max_dense_dim", max_dense_dim, least=0)
    shapes = interaction_shapes() if shapes is None else shapes
    dtype_st = _default_dtypes() if dtypes is None else dtypes

    # A composite (not st.builds) so that a failure prints as InteractionCase(batch=..., ...).
    @st.composite
    def cases(draw) -> InteractionCase:
        batch, features, dim = draw(shapes)
        dense_dim = draw(st.integers(min_dense_dim, max_dense_dim))
        return InteractionCase(batch, features, dim, dense_dim, draw(dtype_st), draw(seeds()))

    return cases()


@dataclasses.dataclass(frozen=True)
class JaggedCase:
    """One jagged pooling input: row lengths, table size, dtype, mode and the seed its values come from."""

    lengths: tuple[int, ...]
    num_items: int
    dim: int
    dtype: torch.dtype
    mode: str
    seed: int

    def tensors(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(values int64 [N], offsets int64 [B+1], table [V, D]), made on the CPU from the seed."""
        gen = torch.Generator().manual_seed(self.seed)
        lengths = torch.tensor(self.lengths, dtype=torch.int64)
        offsets = torch.zeros(len(self.lengths) + 1, dtype=torch.int64)
        offsets[1:] = torch.cumsum(lengths, 0)
        values = torch.randint(0, self.num_items, (int(offsets[-1]),), generator=gen, dtype=torch.int64)
        table = torch.randn(self.num_items, self.dim, generator=gen).to(self.dtype)
        return values.to(device), offsets.to(device), table.to(device)


def jagged_cases(
    *,
    lengths: st.SearchStrategy[list[int]] | None = None,
    dtypes: st.SearchStrategy[torch.dtype] | None = None,
    min_items: int = 1,
    max_items: int = 64,
    min_dim: int = 1,
    max_dim: int = 160,
    modes: tuple[str, ...] = ("sum", "mean"),
) -> st.SearchStrategy[JaggedCase]:
    """Jagged pooling inputs: row lengths from ``lengths``, a table of ``min_items..max_items`` rows of
    ``min_dim..max_dim`` columns, a dtype, a mode and a seed. Few items make repeated ids within a row common.
    """
    _check_bounds("min_items", min_items, "max_items", max_items, least=1)
    _check_bounds("min_dim", min_dim, "max_dim", max_dim, least=1)
    if not modes or any(m not in ("sum", "mean") for m in modes):
        raise InvalidArgument(f"modes={modes!r} must be a non-empty subset of ('sum', 'mean')")
    lengths = jagged_lengths() if lengths is None else lengths
    dtype_st = _default_dtypes() if dtypes is None else dtypes

    # A composite (not st.builds) so that a failure prints as JaggedCase(lengths=..., ...).
    @st.composite
    def cases(draw) -> JaggedCase:
        row_lengths = tuple(draw(lengths))
        items = draw(st.integers(min_items, max_items))
        dim = draw(st.integers(min_dim, max_dim))
        dtype = draw(dtype_st)
        return JaggedCase(row_lengths, items, dim, dtype, draw(st.sampled_from(modes)), draw(seeds()))

    return cases()


def _offsets(lengths: tuple[int, ...]) -> torch.Tensor:
    offsets = torch.zeros(len(lengths) + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(torch.tensor(lengths, dtype=torch.int64), 0)
    return offsets


def _check_choices(name: str, choices: tuple[int, ...], *, powers_of_two: bool = False) -> tuple[int, ...]:
    choices = tuple(choices)
    bad = [
        c
        for c in choices
        if isinstance(c, bool) or not isinstance(c, int) or c < 1 or (powers_of_two and c & (c - 1))
    ]
    if not choices or bad:
        kind = "powers of two" if powers_of_two else "positive ints"
        raise InvalidArgument(f"{name}={choices!r} must be a non-empty tuple of {kind}; e.g. {name}=(16, 32)")
    return choices


@dataclasses.dataclass(frozen=True)
class HstuCase:
    """One jagged HSTU attention input: row lengths, heads, head dim, dtype, grid length, layout and seed."""

    lengths: tuple[int, ...]
    heads: int
    head_dim: int
    dtype: torch.dtype
    max_seq_len: int  # ≥ max(lengths): what the Triton grid is sized by
    packed: bool  # q, k, v as column views of one [T, 4·H·dh] projection, as the model makes them
    seed: int

    def tensors(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, ...]:
        """(q, k, v [T, H, dh], offsets int64 [B+1]), made on the CPU from the seed, then moved to
        ``device``."""
        gen = torch.Generator().manual_seed(self.seed)
        offsets = _offsets(self.lengths)
        total, width = int(offsets[-1]), self.heads * self.head_dim
        if self.packed:
            projection = torch.randn(total, 4 * width, generator=gen).to(device=device, dtype=self.dtype)
            q, k, v = (
                projection[:, i * width : (i + 1) * width].view(total, self.heads, self.head_dim)
                for i in (2, 3, 1)
            )
        else:
            q, k, v = (
                torch.randn(total, self.heads, self.head_dim, generator=gen).to(
                    device=device, dtype=self.dtype
                )
                for _ in range(3)
            )
        return q, k, v, offsets.to(device)


def hstu_cases(
    *,
    lengths: st.SearchStrategy[list[int]] | None = None,
    min_heads: int = 1,
    max_heads: int = 3,
    head_dims: tuple[int, ...] = (8, 16, 24, 32),
    dtypes: st.SearchStrategy[torch.dtype] | None = None,
    max_extra_length: int = 8,
) -> st.SearchStrategy[HstuCase]:
    """HSTU attention inputs: jagged lengths (default: up to 6 users, empty ones, length 1, all equal, one
    long row), heads, a head dim from ``head_dims``, a dtype, a grid length of max(lengths) plus
    0..max_extra_length (0, one user exactly at the maximum, is where it shrinks), contiguous or model-layout
    views, and a seed."""
    _check_bounds("min_heads", min_heads, "max_heads", max_heads, least=1)
    _check_bounds("max_extra_length", max_extra_length, "max_extra_length", max_extra_length, least=0)
    head_dims = _check_choices("head_dims", head_dims)
    lengths = jagged_lengths(max_rows=6, max_length=20, max_long_length=70) if lengths is None else lengths
    dtype_st = _default_dtypes() if dtypes is None else dtypes

    @st.composite
    def cases(draw) -> HstuCase:
        row_lengths = tuple(draw(lengths))
        longest = max(row_lengths, default=0)
        return HstuCase(
            row_lengths,
            draw(st.integers(min_heads, max_heads)),
            draw(st.sampled_from(head_dims)),
            draw(dtype_st),
            longest + draw(st.integers(0, max_extra_length)),
            draw(st.booleans()),
            draw(seeds()),
        )

    return cases()


@dataclasses.dataclass(frozen=True)
class HstuDecodeCase:
    """One decode step: history lengths, heads, head dim, dtype, page size, cache layers, the layer, a
    seed."""

    lengths: tuple[int, ...]
    heads: int
    head_dim: int
    dtype: torch.dtype
    page_size: int
    layers: int
    layer: int
    seed: int

    def tensors(self, device: torch.device | str = "cpu") -> tuple:
        """(q, k, v [B, H, dh], k_cache, v_cache, lengths int64 [B]): a random history written into a paged
        cache with room for the new token, made on the CPU from the seed, then moved to ``device``."""
        from genrec_bench.kernels.hstu_attention import paged_caches_from_jagged

        gen = torch.Generator().manual_seed(self.seed)
        offsets = _offsets(self.lengths)
        total, shape = int(offsets[-1]), (self.heads, self.head_dim)
        history = [
            [torch.randn(total, *shape, generator=gen).to(self.dtype) for _ in range(self.layers)]
            for _ in range(2)
        ]
        lengths = torch.tensor(self.lengths, dtype=torch.int64)
        k_cache, v_cache = paged_caches_from_jagged(
            *history, offsets, lengths, page_size=self.page_size, width=max(self.lengths, default=0) + 1
        )
        batch = len(self.lengths)
        q, k, v = (
            torch.randn(batch, *shape, generator=gen).to(device=device, dtype=self.dtype) for _ in range(3)
        )
        return q, k, v, k_cache.to(device), v_cache.to(device), lengths.to(device)


def hstu_decode_cases(
    *,
    lengths: st.SearchStrategy[list[int]] | None = None,
    min_heads: int = 1,
    max_heads: int = 3,
    head_dims: tuple[int, ...] = (8, 16, 24, 32),
    page_sizes: tuple[int, ...] = (1, 4, 16),
    max_layers: int = 2,
    dtypes: st.SearchStrategy[torch.dtype] | None = None,
) -> st.SearchStrategy[HstuDecodeCase]:
    """Decode inputs: history lengths (empty histories included), heads, head dim, a page size from
    ``page_sizes`` (powers of two), 1..max_layers cache layers and which one the step is for, dtype and
    seed."""
    _check_bounds("min_heads", min_heads, "max_heads", max_heads, least=1)
    _check_bounds("max_layers", max_layers, "max_layers", max_layers, least=1)
    head_dims = _check_choices("head_dims", head_dims)
    page_sizes = _check_choices("page_sizes", page_sizes, powers_of_two=True)
    lengths = jagged_lengths(max_rows=6, max_length=24, max_long_length=80) if lengths is None else lengths
    dtype_st = _default_dtypes() if dtypes is None else dtypes

    @st.composite
    def cases(draw) -> HstuDecodeCase:
        layers = draw(st.integers(1, max_layers))
        return HstuDecodeCase(
            tuple(draw(lengths)),
            draw(st.integers(min_heads, max_heads)),
            draw(st.sampled_from(head_dims)),
            draw(dtype_st),
            draw(st.sampled_from(page_sizes)),
            layers,
            draw(st.integers(0, layers - 1)),
            draw(seeds()),
        )

    return cases()


@dataclasses.dataclass(frozen=True)
class CatalogueCase:
    """One catalogue top-k input: batch, table rows (row 0 is padding), dim, k, dtype, tied rows and a
    seed."""

    batch: int
    num_items: int
    dim: int
    k: int
    dtype: torch.dtype
    duplicates: int  # table rows overwritten with copies of row 1: exact ties
    seed: int

    def tensors(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """(states [B, d], table [N, d]), made on the CPU from the seed, then moved to ``device``."""
        gen = torch.Generator().manual_seed(self.seed)
        states = torch.randn(self.batch, self.dim, generator=gen)
        table = torch.randn(self.num_items, self.dim, generator=gen)
        if self.duplicates:
            copies = torch.randperm(self.num_items - 2, generator=gen)[: self.duplicates] + 2
            table[copies] = table[1].clone()
        return states.to(device=device, dtype=self.dtype), table.to(device=device, dtype=self.dtype)


def catalogue_cases(
    *,
    min_batch: int = 1,
    max_batch: int = 5,
    min_items: int = 2,
    max_items: int = 200,
    min_dim: int = 1,
    max_dim: int = 40,
    dims: tuple[int, ...] | None = None,
    max_k: int = 64,
    dtypes: st.SearchStrategy[torch.dtype] | None = None,
) -> st.SearchStrategy[CatalogueCase]:
    """Catalogue top-k inputs: table sizes across tile edges, k from 1 up to the whole catalogue (k = N − 1 is
    drawn often), no ties, some or every row tied with row 1, a dtype and a seed. The embedding width is drawn
    from ``min_dim..max_dim``, or from ``dims`` when given (a few widths keep the GPU's compiles few)."""
    _check_bounds("min_batch", min_batch, "max_batch", max_batch, least=0)
    _check_bounds("min_items", min_items, "max_items", max_items, least=2)
    _check_bounds("min_dim", min_dim, "max_dim", max_dim, least=1)
    _check_bounds("max_k", max_k, "max_k", max_k, least=1)
    dim_st = st.integers(min_dim, max_dim) if dims is None else st.sampled_from(_check_choices("dims", dims))
    dtype_st = _default_dtypes() if dtypes is None else dtypes

    @st.composite
    def cases(draw) -> CatalogueCase:
        items = draw(st.integers(min_items, max_items))
        largest = min(max_k, items - 1)
        k = draw(st.one_of(st.integers(1, largest), st.just(largest)))
        spare = items - 2  # rows that can be made copies of row 1
        duplicates = draw(st.one_of(st.just(0), st.integers(0, spare), st.just(spare)))
        return CatalogueCase(
            draw(st.integers(min_batch, max_batch)),
            items,
            draw(dim_st),
            k,
            draw(dtype_st),
            duplicates,
            draw(seeds()),
        )

    return cases()
