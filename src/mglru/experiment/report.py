"""Result rows -> PNG plots and one self-contained HTML page (images embedded).

For each study in the rows:

    study plot     by the spec's `[report] kind` (or the study's name):
                   thread-question     which preset wins on combined_cost_ms over locality x
                                       arch, and each preset's refault cost and overhead
                                       beside it, relative to the baseline (v6.10: no
                                       secondary-MMU aging)
                   cover-letter-claim  wss_error and overhead_ms with cap 0x8 on and off
                   mixed-host          per-memcg memory and refaults (the columns the rows
                                       have)
    generic plots  every result metric against the parameters that vary: x is the numeric
                   one with the most values (else the first), one series per value of the
                   next; the mean over the rest (seeds included)
    tables         the key metrics of every row; the points that failed

A plot whose columns are missing is left out with a note saying which, so the
report of a partial or older results file still renders. Plot hints in `[report]`
(x, y, by, baseline) override the defaults named in `_study_hints`.

Future optimizations:
1. confidence intervals over seeds once the studies run several.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Iterable
from typing import Any

from mglru.experiment.figures import (
    KEY_METRICS,
    METRICS,
    POINT_KEYS,
    STUDY_PLOTS,
    Row,
    _fmt,
    _is_number,
    _metric_plot,
    _params,
    _pyplot,
    _slug,
    _values,
    _varying,
)

__all__ = ["report", "METRICS", "KEY_METRICS", "POINT_KEYS", "STUDY_PLOTS"]

# ---------------------------------------------------------------------------------------------
# the page
# ---------------------------------------------------------------------------------------------

_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:1400px}
table{border-collapse:collapse;font-size:12px;margin:1em 0}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}
td.t{text-align:left}figure{display:inline-block;margin:.5em;vertical-align:top}
figcaption{font-size:12px;max-width:600px}.note{color:#a33}"""


def _img(path: str, alt: str) -> str:
    """An <img> holding the PNG as a base64 data URI."""
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _table(rows: list[Row], columns: list[str], limit: int = 1000) -> str:
    """An HTML table of `columns` for the first `limit` rows."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows[:limit]:
        cells = []
        for c in columns:
            v = r.get(c)
            cls = "" if _is_number(v) else ' class="t"'
            cells.append(f"<td{cls}>{html.escape(_fmt(v))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    more = f"<p>{len(rows) - limit} more rows not shown.</p>" if len(rows) > limit else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def _spec_for(study: str, specs: dict[str, Any]) -> Any:
    """The spec of `study`: given, else packaged, else None."""
    if study in specs:
        return specs[study]
    from mglru.experiment.spec import load_spec, study_names

    if study in study_names():
        try:
            return load_spec(study)
        except ValueError:
            return None
    return None


def report(rows: str | Iterable[Row], out_dir: str, *, specs: Iterable[Any] = (),
           source: str | None = None, metrics: Iterable[str] = METRICS) -> str:
    """Write the plots (PNG) and `report.html` for result rows into `out_dir`.

    Args:
        rows: result rows (error rows allowed), or a results file (see
            `mglru.experiment.sweep.read_results`).
        out_dir: created if missing; the PNGs and report.html go there.
        specs: specs (`mglru.experiment.spec.Spec`) of studies that are not packaged,
            for their description, parameter order and `[report]` hints.
        source: where the rows came from, for the page (the path when `rows` is one).
        metrics: the metrics of the generic plots (one PNG each); the study plots and
            tables are drawn whatever this says.

    Returns:
        The path of report.html.

    Raises:
        ImportError: matplotlib is missing.
        ValueError: no rows, or a results file that is not ours.
    """
    if isinstance(rows, str | os.PathLike):
        from mglru.experiment.sweep import read_results

        source = source or os.fspath(rows)
        ok, errors = read_results(os.fspath(rows))
    else:
        all_rows = list(rows)
        ok = [r for r in all_rows if r.get("error") is None]
        errors = [r for r in all_rows if r.get("error") is not None]
    if not ok and not errors:
        raise ValueError(f"{source or 'rows'}: no rows to report")
    _pyplot()  # ImportError before any file is written
    os.makedirs(out_dir, exist_ok=True)
    known = {s.name: s for s in specs}
    metrics = tuple(metrics)
    studies: dict[str, list[Row]] = {}
    for r in ok:
        studies.setdefault(str(r.get("study", "experiment")), []).append(r)

    parts = [f"<h1>mglru experiment report</h1><p>{len(ok)} rows"
             f"{f', {len(errors)} failed points' if errors else ''}"
             f"{f' from {html.escape(source)}' if source else ''}.</p>"]
    for study, srows in studies.items():
        spec = _spec_for(study, known)
        slug = _slug(study)
        prefix = os.path.join(out_dir, slug)
        params = _params(srows, spec)
        varying = _varying(srows, params)
        parts.append(f'<section id="{html.escape(slug)}"><h2>{html.escape(study)}</h2>')
        if spec is not None:
            if spec.description:
                parts.append(f"<p>{html.escape(spec.description)}</p>")
            parts.append(f"<p>Spec: {html.escape(spec.source)}.</p>")
        sizes = _values(srows, "size")
        parts.append(f"<p>{len(srows)} rows; size {html.escape(', '.join(map(str, sizes)))}; "
                     f"varying: {html.escape(', '.join(varying) or 'nothing')}.</p>")
        hints = dict(spec.report) if spec is not None else {}
        kind = hints.get("kind") or study
        if kind in STUDY_PLOTS:
            for title, png, caption in STUDY_PLOTS[kind](srows, hints, prefix):
                parts.append(f"<h3>{html.escape(title)}</h3>")
                if png is None:
                    parts.append(f'<p class="note">{html.escape(caption)}</p>')
                else:
                    parts.append(f"<figure>{_img(png, title)}<figcaption>"
                                 f"{html.escape(caption)}</figcaption></figure>")
        columns = ["run_id", *varying, *(["seed"] if "seed" in params and
                                         len(_values(srows, "seed")) > 1 else []),
                   *(m for m in KEY_METRICS if any(m in r for r in srows))]
        parts.append("<h3>Key metrics</h3>" + _table(srows, columns))
        parts.append("<h3>Every metric</h3>")
        if not varying:
            parts.append('<p class="note">Nothing varies: no plots, see the table.</p>')
        else:
            numeric = [k for k in varying if all(_is_number(v) for v in _values(srows, k))]
            x = max(numeric, key=lambda k: len(_values(srows, k))) if numeric else varying[0]
            rest = [k for k in varying if k != x]
            series = rest[0] if rest else None
            averaged = rest[1:] + (["seed"] if len(_values(srows, "seed")) > 1 else [])
            for m in metrics:
                if not any(_is_number(r.get(m)) for r in srows):
                    continue
                png = _metric_plot(srows, m, x, series, averaged, f"{prefix}-{m}.png")
                if png is not None:
                    parts.append(f"<figure>{_img(png, m)}</figure>")
        parts.append("</section>")
    if errors:
        parts.append("<section id=\"errors\"><h2>Failed points</h2>"
                     + _table(errors, ["run_id", "error"]) + "</section>")
    page = (f"<!doctype html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>mglru experiment report</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(parts) + "\n</body></html>\n")
    path = os.path.join(out_dir, "report.html")
    with open(path, "w") as f:
        f.write(page)
    return path
