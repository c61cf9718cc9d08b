"""The paged KV cache decode attention reads in place: what prefill writes and each decode step appends to.

Layout: one ``PagedCache`` holds the keys, another the values; both share one page table.

- ``pages`` [layers, num_pages, page_size, H, dh]: a pool of pages. A page holds ``page_size`` consecutive
  positions of one user, and each position's H·dh values are one contiguous row (512 bytes at H=8, dh=32 in
  fp16), so a decode program reads whole rows.
- ``page_table`` [B, pages_per_user] int32: position p of user b is row ``p % page_size`` of page
  ``page_table[b, p // page_size]``; -1 where no page is allocated.

``paged_caches_from_jagged`` (the prefill's write) gives user b ``ceil((length_b + 1) / page_size)`` pages, so
the page holding position ``length_b`` — where the next token goes — always exists, and no user holds more
than one partly empty page. A decode step writes its new token's k/v at position ``lengths[b]`` and reads
positions ``< lengths[b]`` plus the new token itself; the history never moves. Decode does not advance
``lengths``: called again with the same inputs it writes the same row and reads the same positions, so
replayed CUDA graphs and repeated benchmark rounds never see a longer history. A server advances ``lengths``
after each step and gives a user a new page when its length reaches a page boundary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from .reference import jagged_positions

#: Positions per page. Decode reads per position (one page-table lookup per row), so the page size only sets
#: the allocation grain: at most page_size − 1 empty rows per user.
DEFAULT_PAGE_SIZE = 32


@dataclasses.dataclass(frozen=True)
class PagedCache:
    """Keys or values of every layer in pages; see the module docstring for the layout."""

    pages: torch.Tensor  # [layers, num_pages, page_size, H, dh]
    page_table: torch.Tensor  # [B, pages_per_user] int32, -1 = unallocated

    @property
    def page_size(self) -> int:
        return self.pages.shape[2]

    def to(self, *args, **kwargs) -> PagedCache:
        """A cache with ``pages.to(*args, **kwargs)`` (dtype and/or device); the table follows the device
        only."""
        pages = self.pages.to(*args, **kwargs)
        return PagedCache(pages, self.page_table.to(pages.device))

    def rows(self, positions: torch.Tensor) -> torch.Tensor:
        """Flat row (page · page_size + row in page) of position ``positions[b, j]`` of user b: [B, J]
        int64."""
        page = self.page_table.gather(1, torch.div(positions, self.page_size, rounding_mode="floor")).long()
        return page * self.page_size + positions % self.page_size

    def history(self, layer: int, lengths: torch.Tensor, width: int) -> torch.Tensor:
        """Layer ``layer``'s first ``width`` positions per user, zero past each length: [B, width, H, dh]."""
        positions = torch.arange(width, device=lengths.device).expand(lengths.numel(), width)
        inside = positions < lengths[:, None]
        flat = self.pages[layer].flatten(0, 1)  # [num_pages · page_size, H, dh]
        rows = self.rows(torch.where(inside, positions, 0).contiguous())
        return flat[rows] * inside[..., None, None].to(flat.dtype)


def allocate_page_table(lengths: torch.Tensor, *, page_size: int, width: int) -> tuple[torch.Tensor, int]:
    """Page table for histories of ``lengths`` with room for one more token each, and the pages it uses.

    ``width`` is the most positions a user may ever hold (the table has ceil(width / page_size) columns).
    Pages are handed out in user order. Reads ``lengths`` on the host (one sync): cache building is setup.
    """
    if page_size < 1 or page_size & (page_size - 1):
        raise ValueError(f"paged cache | page_size={page_size} must be a power of two")
    needed = torch.div(
        lengths + page_size, page_size, rounding_mode="floor"
    )  # ceil((length + 1) / page_size)
    columns = -(-width // page_size)
    if lengths.numel() and int(needed.max()) > columns:
        raise ValueError(
            f"paged cache | a history of {int(lengths.max())} plus the next token needs more than "
            f"width={width} positions; pass a width of at least {int(lengths.max()) + 1}"
        )
    first = torch.cumsum(needed, 0) - needed
    column = torch.arange(columns, device=lengths.device)
    table = torch.where(column[None, :] < needed[:, None], first[:, None] + column[None, :], -1)
    return table.to(torch.int32), int(needed.sum())


def paged_caches_from_jagged(
    keys: Sequence[torch.Tensor],
    values: Sequence[torch.Tensor],
    offsets: torch.Tensor,
    lengths: torch.Tensor,
    *,
    width: int,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> tuple[PagedCache, PagedCache]:
    """The prefill's write: per-layer jagged keys and values [T, H, dh] (user b's rows
    offsets[b]:offsets[b+1], at most lengths[b] + 1 of them) copied once into freshly allocated pages. Returns
    (keys, values) caches."""
    table, num_pages = allocate_page_table(lengths, page_size=page_size, width=width)
    heads, head_dim = keys[0].shape[1:]
    cache = [
        PagedCache(keys[0].new_zeros(len(keys), num_pages, page_size, heads, head_dim), table),
        PagedCache(values[0].new_zeros(len(values), num_pages, page_size, heads, head_dim), table),
    ]
    total = int(offsets[-1])
    user, pos = jagged_positions(offsets, total)
    page = table[user, torch.div(pos, page_size, rounding_mode="floor")].long()
    rows = page * page_size + pos % page_size
    for layer, (k, v) in enumerate(zip(keys, values)):
        cache[0].pages[layer].flatten(0, 1)[rows] = k[:total]
        cache[1].pages[layer].flatten(0, 1)[rows] = v[:total]
    return cache[0], cache[1]
