"""Charts for the HTML pages people read (the KPI report, the scoring summary): PNG images
embedded as data URIs, so a page is one file that opens offline."""

from __future__ import annotations

import base64
import io


def new_figure(width: float = 7.2, height: float = 3.0, fit: bool = False):
    """A figure on an explicit Agg canvas: no global backend is switched, so the report can
    be drawn from a notebook or a server. Imported here so that `churn` commands that draw
    nothing do not load matplotlib. Line charts use fixed margins (`fit` lays out
    automatically but draws twice, which makes a report of 18 charts ~3x slower)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained" if fit else None)
    FigureCanvasAgg(figure)
    if not fit:
        figure.subplots_adjust(left=0.11, right=0.98, top=0.95, bottom=0.22)
    return figure


def data_uri(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})  # no version stamp: same bytes each run
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
