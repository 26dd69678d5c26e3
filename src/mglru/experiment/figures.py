"""The report's figures: the study plots and the generic metric plots, from result rows.

    thread-question     which preset wins on combined_cost_ms over locality x arch, and
                        each preset's refault cost and overhead beside it, relative to the
                        baseline (v6.10: no secondary-MMU aging)
    cover-letter-claim  wss_error and overhead_ms with cap 0x8 on and off
    mixed-host          per-memcg memory and refaults (the columns the rows have)
    generic             a metric against the parameters that vary

matplotlib is imported on first use (`mglru.plots`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from typing import Any

from mglru.experiment.columns import METRICS, cell

#: the columns of the tables (the HTML page's and `mglru experiment run`'s)
KEY_METRICS = ("cost_per_saved_mib", "combined_cost_ms", "overhead_ms", "refault_cost_ms",
               "wss_error", "saved_mib_mean", "refaults", "warm_reclaimed_frac")
#: point keys run_point knows (besides agent_*): parameters, not metrics
POINT_KEYS = ("study", "size", "seed", "run_id", "preset", "arch", "workload", "alpha",
              "hot_fraction", "phases", "locality", "guest_mib", "vcpus", "tlb_entries",
              "host_mib", "host_tasks", "memory_mib", "pressure", "duration_ms", "rate",
              "quantum_ms", "agent", "cap_0x8", "warm_ms", "wss_ms")
_ID_KEYS = ("run_id", "study", "size", "error")

Row = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# rows: parameters, grouping, means
# ---------------------------------------------------------------------------------------------

def _is_number(v: Any) -> bool:
    """A finite int or float (booleans are parameters, not numbers)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _params(rows: list[Row], spec: Any) -> list[str]:
    """The parameter columns, in the spec's order (grid keys first) or the rows'."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    if spec is not None:
        known = [*spec.grid, *spec.base, *(k for s in spec.sizes.values() for k in s), "seed"]
        order = list(dict.fromkeys(known))
        return [k for k in order if k in keys and k not in _ID_KEYS]
    return [k for k in keys if k not in _ID_KEYS and k not in METRICS
            and (k in POINT_KEYS or k.startswith("agent_"))]


def _values(rows: list[Row], key: str) -> list[Any]:
    """The distinct values of `key`, numbers sorted, others in order of appearance."""
    vals = list(dict.fromkeys(json.dumps(r.get(key)) for r in rows))
    out = [json.loads(v) for v in vals]
    if all(_is_number(v) for v in out):
        out.sort()
    return out


def _varying(rows: list[Row], params: list[str]) -> list[str]:
    """The parameters with more than one value (seeds are averaged, not varied)."""
    return [k for k in params if k != "seed" and len(_values(rows, k)) > 1]


def _mean(rows: list[Row], metric: str) -> float | None:
    """The mean of `metric` over the rows that have a number for it (None: none)."""
    xs = [r[metric] for r in rows if _is_number(r.get(metric))]
    return sum(xs) / len(xs) if xs else None


def _select(rows: list[Row], **match: Any) -> list[Row]:
    """The rows whose values equal `match` (as JSON: true is not 1)."""
    return [r for r in rows if all(json.dumps(r.get(k)) == json.dumps(v)
                                   for k, v in match.items())]


def _fmt(v: Any) -> str:
    """A table cell (see `columns.cell`), with an en dash for None."""
    return cell(v, "–")


# ---------------------------------------------------------------------------------------------
# matplotlib
# ---------------------------------------------------------------------------------------------

def _pyplot():  # noqa: ANN202 - the pyplot module
    """matplotlib's pyplot on the Agg backend; ImportError naming the extra if missing."""
    from mglru.plots import pyplot

    return pyplot("experiment")


def _save(fig: Any, path: str, tight: bool = True) -> str:
    """Write the figure to `path` and close it."""
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=90)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _metric_plot(rows: list[Row], metric: str, x: str, series: str | None, averaged: list[str],
                 path: str) -> str | None:
    """`metric` against `x`, one line or bar group per value of `series`; None if no data."""
    plt = _pyplot()
    xs = _values(rows, x)
    groups = _values(rows, series) if series else [None]
    data = {}
    for g in groups:
        sub = _select(rows, **{series: g}) if series else rows
        data[json.dumps(g)] = [_mean(_select(sub, **{x: v}), metric) for v in xs]
    if all(y is None for ys in data.values() for y in ys):
        return None
    # NOTE: grid values are settings, not a continuum (1, 64, 512): evenly spaced, labelled,
    # which also spares matplotlib's log-scale ticks (a quarter second per plot)
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    lines = all(_is_number(v) for v in xs) and len(xs) >= 3
    width = 0.8 / len(groups)
    for i, g in enumerate(groups):
        ys = data[json.dumps(g)]
        label = None if series is None else f"{series}={g}"
        if lines:
            pts = [(j, y) for j, y in enumerate(ys) if y is not None]
            ax.plot(*zip(*pts, strict=True), "-o", ms=3, label=label)
        else:
            pos = [j + (i - (len(groups) - 1) / 2) * width for j in range(len(xs))]
            ax.bar(pos, [0 if y is None else y for y in ys], width, label=label)
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_xlabel(x + (f"  (mean over {', '.join(averaged)})" if averaged else ""),
                  fontsize=8 if averaged else None)
    ax.set_title(metric, fontsize=10)
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend(fontsize=7)
    fig.subplots_adjust(left=0.16, right=0.97, bottom=0.16, top=0.9)
    return _save(fig, path, tight=False)


def _heatmap(ax: Any, grid: list[list[float | None]], xs: list, ys: list, title: str,
             diverging: bool, fmt: Callable[[float], str]) -> None:
    """A grid of values on `ax`, annotated; diverging colours centred on zero."""
    import numpy as np

    arr = np.array([[np.nan if v is None else v for v in row] for row in grid], dtype=float)
    if diverging:
        lim = float(np.nanmax(np.abs(arr))) if np.isfinite(arr).any() else 1.0
        im = ax.imshow(arr, cmap="RdBu_r", vmin=-lim or -1, vmax=lim or 1, aspect="auto")
    else:
        im = ax.imshow(arr, cmap="viridis", aspect="auto")
    ax.figure.colorbar(im, ax=ax, shrink=0.8)
    lo, hi = im.get_clim()
    for (i, j), v in np.ndenumerate(arr):
        if np.isfinite(v):
            strong = abs(v) > max(abs(lo), abs(hi)) / 2 if diverging else v < (lo + hi) / 2
            ax.text(j, i, fmt(v), ha="center", va="center", fontsize=7,
                    color="white" if strong else "black")
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    ax.set_title(title, fontsize=9)


# ---------------------------------------------------------------------------------------------
# study plots: each returns [(title, png path or None, caption)]
# ---------------------------------------------------------------------------------------------

_METRIC_NOTES = {
    "combined_cost_ms": " (refault cost + overhead)",
    "cost_per_saved_mib": " (refault cost + overhead, per MiB saved on average)",
}

Figure = tuple[str, str | None, str]


def _missing(rows: list[Row], keys: Iterable[str]) -> list[str]:
    """The keys that no row has."""
    return [k for k in keys if not any(k in r for r in rows)]


def _thread_question(rows: list[Row], hints: dict, prefix: str) -> list[Figure]:
    """The winner map and the sides against the baseline, one of each per facet value."""
    x, y, by = hints.get("x", "locality"), hints.get("y", "arch"), hints.get("by", "preset")
    baseline = hints.get("baseline", "v6.10")
    metric = hints.get("metric", "combined_cost_ms")
    missing = _missing(rows, (x, y, by, metric))
    if missing:
        return [("Which preset wins", None, f"not drawn: the rows have no {', '.join(missing)}")]
    facet = hints.get("facet", "workload")
    facets = _values(rows, facet) if not _missing(rows, [facet]) else [None]
    if len(facets) < 2:
        facet, facets = None, [None]
    out = []
    for fv in facets:
        sub = _select(rows, **{facet: fv}) if facet else rows
        tag = "" if facet is None else f"-{_slug(str(fv))}"
        what = "" if facet is None else f" ({facet} {fv})"
        out += _winner_map(sub, x, y, by, baseline, f"{prefix}-winner{tag}.png", what, metric)
        out += _sides(sub, x, y, by, baseline, f"{prefix}-vs-baseline{tag}.png", what)
    return out


def _winner_map(rows: list[Row], x: str, y: str, by: str, baseline: str, path: str,
                what: str, metric: str = "combined_cost_ms") -> list[Figure]:
    """Each (x, y) cell: the `by` value with the lowest `metric`, and its gain."""
    import numpy as np
    from matplotlib.patches import Patch

    plt = _pyplot()
    xs, ys, presets = _values(rows, x), _values(rows, y), _values(rows, by)
    keys = [json.dumps(p) for p in presets]
    winner: list[list[float]] = []
    notes: list[list[str]] = []
    for yv in ys:
        winner.append([])
        notes.append([])
        for xv in xs:
            cell = _select(rows, **{x: xv, y: yv})
            costs = {k: _mean(_select(cell, **{by: p}), metric)
                     for k, p in zip(keys, presets, strict=True)}
            costs = {k: c for k, c in costs.items() if c is not None}
            if not costs:
                winner[-1].append(np.nan)
                notes[-1].append("")
                continue
            best = min(costs, key=lambda k: (costs[k], k))
            winner[-1].append(float(keys.index(best)))
            base = costs.get(json.dumps(baseline))
            gain = "" if not base else f"\n{(costs[best] / base - 1) * 100:+.0f}%"
            notes[-1].append(f"{json.loads(best)}{gain}")
    fig, ax = plt.subplots(figsize=(1.4 * len(xs) + 3.5, 0.7 * len(ys) + 1.8))
    cmap = plt.get_cmap("Pastel1" if len(presets) <= 9 else "tab20", max(len(presets), 1))
    ax.imshow(np.array(winner, dtype=float), cmap=cmap, vmin=-0.5, vmax=len(presets) - 0.5,
              aspect="auto")
    for i, row in enumerate(notes):
        for j, text in enumerate(row):
            ax.text(j, i, text, ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    ax.set(xlabel=x, ylabel=y)
    ax.set_title(f"lowest {metric}{what}: {by}, % vs {baseline}", fontsize=9)
    ax.legend(handles=[Patch(color=cmap(i), label=str(p)) for i, p in enumerate(presets)],
              fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), title=by,
              title_fontsize=7)
    title = f"Which {by} wins{what}"
    return [(title, _save(fig, path),
             f"Each cell: the {by} with the lowest {metric}{_METRIC_NOTES.get(metric, '')}, "
             f"and its change against {baseline}, mean over the other parameters.")]


def _sides(rows: list[Row], x: str, y: str, by: str, baseline: str, path: str,
           what: str) -> list[Figure]:
    """Per `by` value: combined cost, refault cost and overhead minus the baseline's."""
    plt = _pyplot()
    xs, ys, presets = _values(rows, x), _values(rows, y), _values(rows, by)
    sides = [m for m in ("combined_cost_ms", "refault_cost_ms", "overhead_ms", "saved_mib_mean")
             if not _missing(rows, [m])]
    has_base = any(json.dumps(p) == json.dumps(baseline) for p in presets)
    others = [p for p in presets if json.dumps(p) != json.dumps(baseline)] if has_base \
        else presets
    if not others:
        return []

    def cell(metric: str, preset: Any, xv: Any, yv: Any) -> float | None:
        """The mean of `metric` for one preset in one (x, y) cell."""
        return _mean(_select(rows, **{by: preset, x: xv, y: yv}), metric)

    fig, axes = plt.subplots(len(others), len(sides), squeeze=False,
                             figsize=(3.6 * len(sides), 2.4 * len(others) + 0.6))
    for i, p in enumerate(others):
        for j, m in enumerate(sides):
            grid = []
            for yv in ys:
                grid.append([])
                for xv in xs:
                    v = cell(m, p, xv, yv)
                    b = cell(m, baseline, xv, yv) if has_base else 0.0
                    grid[-1].append(None if v is None or b is None else v - b)
            label = f"{m} − {baseline}" if has_base else m
            _heatmap(axes[i][j], grid, xs, ys, f"{p}: {label}", has_base, lambda v: f"{v:.3g}")
            axes[i][j].set(xlabel=x, ylabel=y)
    caption = (f"Each {by} against {baseline} (ms; below zero: cheaper than {baseline}): "
               "the total, the refault side (quality) and the overhead side (aging and eviction "
               "CPU, vCPU stalls)." if has_base else
               f"No {baseline} rows: absolute values, not differences.")
    return [(f"Refault cost and overhead against {baseline}{what}", _save(fig, path), caption)]


def _cover_letter_claim(rows: list[Row], hints: dict, prefix: str) -> list[Figure]:
    """wss_error and overhead_ms with cap 0x8 on and off, per the next varying key."""
    cap = hints.get("by", "cap_0x8")
    metrics = [m for m in ("wss_error", "overhead_ms") if not _missing(rows, [m])]
    states = _values(rows, cap) if not _missing(rows, [cap]) else []
    if len(states) < 2 or not metrics:
        return [("cap 0x8 on and off", None,
                 f"not drawn: the rows need {cap} both on and off and wss_error or overhead_ms")]
    plt = _pyplot()
    rest = [k for k in _varying(rows, _params(rows, None)) if k != cap]
    x = hints.get("x", rest[0] if rest else None)
    xs = _values(rows, x) if x else [None]
    fig, axes = plt.subplots(1, len(metrics), squeeze=False, figsize=(5 * len(metrics), 3.4))
    width = 0.8 / len(states)
    for ax, m in zip(axes[0], metrics, strict=True):
        for i, s in enumerate(states):
            ys = [_mean(_select(rows, **{cap: s, **({x: v} if x else {})}), m) for v in xs]
            pos = [j + (i - (len(states) - 1) / 2) * width for j in range(len(xs))]
            ax.bar(pos, [0 if v is None else v for v in ys], width,
                   label=f"{cap} {'on' if s is True else 'off' if s is False else s}")
        ax.set_xticks(range(len(xs)), [str(v) for v in xs])
        ax.set(xlabel=x or "", title=m)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    return [("cap 0x8 on and off", _save(fig, f"{prefix}-cap_0x8.png"),
             f"wss_error (working-set estimate error) and overhead_ms with {cap} on and off, "
             f"per {x or 'study'}, mean over the other parameters.")]


#: per-side columns of the mixed-host rows (`guest_refaults`, `host_rss_mib_end`, ...)
_SIDE_COLUMN = re.compile(r"^(?P<side>[a-z0-9]+)_(?P<what>rss_mib_end|saved_mib_end|refaults|"
                          r"major_faults)$")
_SIDE_TITLES = {"rss_mib_end": "resident at the end (MiB)",
                "saved_mib_end": "saved at the end (MiB)", "refaults": "refaults",
                "major_faults": "major faults"}


def _mixed_host(rows: list[Row], hints: dict, prefix: str) -> list[Figure]:
    """Per side (guest, host): memory and refaults, per `x` and per `by` (the agent)."""
    columns: dict[str, list[str]] = {}
    for k in dict.fromkeys(k for r in rows for k in r):
        m = _SIDE_COLUMN.match(k)
        if m and any(_is_number(r.get(k)) for r in rows):
            columns.setdefault(m["what"], []).append(k)
    panels = [(what, columns[what]) for what in _SIDE_TITLES if len(columns.get(what, [])) > 1]
    if not panels:
        return [("Memory and refaults per memcg", None,
                 "not drawn: the rows have no per-side columns (guest_refaults, "
                 "host_refaults, guest_rss_mib_end, ...)")]
    plt = _pyplot()
    varying = _varying(rows, _params(rows, None))
    x = hints.get("x", "preset" if "preset" in varying else (varying[0] if varying else None))
    by = hints.get("by", "agent")
    facets = _values(rows, by) if by in varying and by != x else [None]
    xs = _values(rows, x) if x else [None]
    fig, axes = plt.subplots(len(facets), len(panels), squeeze=False,
                             figsize=(4.2 * len(panels), 2.8 * len(facets) + 0.6))
    for i, fv in enumerate(facets):
        sub = rows if fv is None else _select(rows, **{by: fv})
        for j, (what, keys) in enumerate(panels):
            ax = axes[i][j]
            width = 0.8 / len(keys)
            for n, k in enumerate(keys):
                ys = [_mean(_select(sub, **({x: v} if x else {})), k) for v in xs]
                pos = [c + (n - (len(keys) - 1) / 2) * width for c in range(len(xs))]
                ax.bar(pos, [0 if v is None else v for v in ys], width,
                       label=k.removesuffix(f"_{what}"))
            ax.set_xticks(range(len(xs)), [str(v) for v in xs], fontsize=7)
            ax.set_title(_SIDE_TITLES[what] + ("" if fv is None else f", {by} {fv}"),
                         fontsize=9)
            ax.grid(True, axis="y", alpha=0.3)
            ax.legend(fontsize=7)
    names = ", ".join(k for _, keys in panels for k in keys)
    return [("Memory and refaults per memcg", _save(fig, f"{prefix}-memcgs.png"),
             f"Per side: {names}; per {x or 'study'}"
             f"{'' if facets == [None] else f' and {by}'}, mean over the other parameters.")]


#: `[report] kind` -> the study plot
STUDY_PLOTS: dict[str, Callable[[list[Row], dict, str], list[Figure]]] = {
    "thread-question": _thread_question,
    "cover-letter-claim": _cover_letter_claim,
    "mixed-host": _mixed_host,
}


def _slug(name: str) -> str:
    """`name` made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "study"
