"""The dashboard page: one self-contained static HTML file, plotly.js and every style inlined, no request
to the network.

plotly.js (about 4.6 MB) is inlined once in the head; every chart is a div plus a call to
``Plotly.newPlot``. A small script counts the charts as their ``newPlot`` promises resolve and, once all
have rendered, appends ``<div id="pyconv-rendered" data-charts=N data-errors=M>``, where M counts the
script errors and ``console.error`` calls seen so far: what a headless browser checks.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Sequence, Union

from plotly.offline import get_plotlyjs

from .views import Table, View

__all__ = ["render", "write"]

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 2rem 3rem; color: #222; }
nav { position: sticky; top: 0; background: #fff; padding: .6rem 0; border-bottom: 1px solid #ddd; z-index: 10; }
nav a { margin-right: 1.2rem; }
p.guide { font-style: italic; color: #444; }
table { border-collapse: collapse; font-size: .85rem; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr.bad td { background: #fde0e0; color: #b00; font-weight: bold; }
tr.noisy td { background: #fff4d6; }
tr.skipped td { color: #777; }
tr.good td { color: #1a7f1a; }
"""

# Counts rendered charts and errors; runs before plotly.js so that errors while loading it count too.
TRACKER = """
window.pyconvDashboard = {expected: %d, rendered: 0, errors: []};
window.addEventListener("error", function (e) { pyconvDashboard.errors.push(String(e.message)); });
(function () {
  var original = console.error;
  console.error = function () {
    pyconvDashboard.errors.push(Array.prototype.join.call(arguments, " "));
    original.apply(console, arguments);
  };
})();
function pyconvRendered() {
  var d = window.pyconvDashboard;
  d.rendered += 1;
  if (d.rendered === d.expected) pyconvMark();
}
document.addEventListener("DOMContentLoaded", function () {
  if (window.pyconvDashboard.expected === 0) pyconvMark();
});
function pyconvMark() {
  var d = window.pyconvDashboard;
  var marker = document.createElement("div");
  marker.id = "pyconv-rendered";
  marker.dataset.charts = String(d.rendered);
  marker.dataset.errors = String(d.errors.length);
  marker.textContent = d.errors.join("\\n");
  marker.hidden = true;
  document.body.appendChild(marker);
}
"""


def _table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    rows = []
    for i, row in enumerate(table.rows):
        css = table.classes[i] if i < len(table.classes) and table.classes[i] else ""
        cells = "".join(f"<td>{html.escape(str(c))}</td>" for c in row)
        rows.append(f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    text = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return f"<details><summary>{html.escape(table.folded)}</summary>{text}</details>" if table.folded else text


def _section(view: View, first_chart: int) -> str:
    parts = [f'<section id="{view.id}"><h2>{html.escape(view.title)}</h2>',
             f'<p class="guide">{html.escape(view.guide)}</p>']
    for i, fig in enumerate(view.figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{first_chart + i}",
                                 post_script="pyconvRendered();", config={"displaylogo": False}))
    parts += [_table(t) for t in view.tables]
    parts += [f"<p>{html.escape(n)}</p>" for n in view.notes]
    return "\n".join(parts) + "</section>"


def render(views: Sequence[View], title: str = "pyconv benchmarks") -> str:
    """The page holding ``views``, in order."""
    charts = sum(len(v.figures) for v in views)
    nav = "".join(f'<a href="#{v.id}">{html.escape(v.title)}</a>' for v in views)
    sections, first = [], 0
    for view in views:
        sections.append(_section(view, first))
        first += len(view.figures)
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style>", f"<script>{TRACKER % charts}</script>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>', "</head><body>",
        f"<h1>{html.escape(title)}</h1>", f"<nav>{nav}</nav>", *sections, "</body></html>"])


def write(views: Sequence[View], path: Union[str, Path], title: str = "pyconv benchmarks") -> Path:
    """Render ``views`` into the file ``path``; returns it."""
    path = Path(path)
    path.write_text(render(views, title), encoding="utf-8")
    return path
