"""Progress on the steps a user waits for without other output (serving sweeps and the like).

Drawn with rich on the terminal itself (`sys.__stderr__`: pytest captures `sys.stderr`), and only when that is
a terminal: in CI logs and pipes nothing is added.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

T = TypeVar("T")


def terminal() -> Console:
    """A console on the real stderr, whatever pytest captures."""
    return Console(file=sys.__stderr__)


def steps(items: Iterable[T], description: str) -> Iterator[T]:
    """Yield `items`, showing a transient progress bar `description: i/n` while they run."""
    console = terminal()
    if not console.is_terminal:
        yield from items
        return
    columns = (
        TextColumn("genrec-bench: {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        yield from progress.track(items, description=description)
