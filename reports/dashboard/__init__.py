"""`python -m reports dashboard --history DIR --out SITE/`: one index.html that works from file:// with no
network.

The data is embedded as JSON and plotly.js (from the plotly package, `plotly.offline.get_plotlyjs()`) is
inlined once; page.html and page.js beside this file draw the views.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from genrec_bench.bench.stats import GateSettings
from genrec_bench.matrices.errors import ResultsError
from genrec_bench.reports.acknowledgements import Acknowledgement
from genrec_bench.reports.dashboard.data import dashboard_data
from genrec_bench.reports.history import read_history

HERE = Path(__file__).resolve().parent


def _plotly_js() -> str:
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise ResultsError(
            "the dashboard needs the plotly package (a genrec-bench dependency): pip install plotly"
        ) from None
    return get_plotlyjs()


def _script_safe(text: str) -> str:
    # Inside <script>, only "</" can end the element early; JSON and JS read "<\/" as the same two characters.
    return text.replace("</", "<\\/")


def render(data: dict) -> str:
    """The page as one string: template, inlined plotly.js, the page's script and the data."""
    page = (HERE / "page.html").read_text(encoding="utf-8")
    parts = {
        "/*PLOTLY*/": _script_safe(_plotly_js()),
        "/*PAGE*/": _script_safe((HERE / "page.js").read_text()),
        "/*DATA*/": _script_safe(json.dumps(data, allow_nan=False, separators=(",", ":"))),
    }
    for marker, text in parts.items():
        page = page.replace(marker, text, 1)
    return page


def build(
    history: str | os.PathLike, out: str | os.PathLike, settings: GateSettings, acks: list[Acknowledgement]
) -> Path:
    """Write `out`/index.html from the store at `history`; returns its path."""
    store = read_history(history)
    if not store.runs:
        raise ResultsError(
            f"{history}: the history holds no runs; add some with `python -m reports history add`"
        )
    html = render(dashboard_data(store, settings, acks))
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    index = folder / "index.html"
    index.write_text(html, encoding="utf-8")
    return index
