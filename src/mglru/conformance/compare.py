"""Compare a real kernel's trace with the model's, snapshot by snapshot, with a stated tolerance.

Exact: the seqs listed per memcg, the order lru_gen lists the memcgs in, and every
command's result ("ok", the errno, or the text a `read` step read).
Within tolerance: pages per generation and type, and memory.stat counters. The
real kernel has pages the model does not: the task's own stack and the pages
it dirtied copying the agent on fork, and up to a folio batch of freshly
faulted folios still waiting on a per-CPU list before they reach the LRU
(`folio_batch`, 15 in 6.1 and 31 in 6.12). So a count agrees when

    |kernel - model| <= max(TOLERANCE_PAGES, TOLERANCE_FRACTION * pages of the memcg)
"""

from __future__ import annotations

from mglru.conformance.run import Snapshot, Trace

__all__ = ["TOLERANCE_PAGES", "TOLERANCE_FRACTION", "compare_traces", "tolerance"]

TOLERANCE_PAGES = 64
TOLERANCE_FRACTION = 0.02
PAGE_SIZE = 4096
#: memory.stat keys counted in events or pages; every other key is in bytes
_EVENT_PREFIXES = ("pg", "workingset_", "thp_", "pswp", "zswp")


def tolerance(total_pages: int) -> int:
    """The allowed difference in pages for a memcg holding `total_pages`."""
    return max(TOLERANCE_PAGES, int(TOLERANCE_FRACTION * total_pages))


def _total(gens: list[tuple[int, int, int]] | None) -> int:
    return sum(a + f for _, a, f in gens or ())


def _compare_snapshot(k: Snapshot, m: Snapshot) -> list[str]:
    out = []
    if k.order != m.order:
        out.append(f"{k.name}: lru_gen lists kernel {' '.join(k.order)}, "
                   f"model {' '.join(m.order)}")
    for memcg in k.gens:
        kg, mg = k.gens[memcg], m.gens.get(memcg)
        where = f"{k.name} {memcg}"
        if kg is None or mg is None:
            if (kg is None) != (mg is None):
                out.append(f"{where}: listed in lru_gen: kernel {kg is not None}, "
                           f"model {mg is not None}")
            continue
        tol = tolerance(max(_total(kg), _total(mg)))
        kseqs, mseqs = [g[0] for g in kg], [g[0] for g in mg]
        if kseqs != mseqs:
            out.append(f"{where}: seqs kernel {kseqs[0]}..{kseqs[-1]}, "
                       f"model {mseqs[0]}..{mseqs[-1]}" if kseqs and mseqs else
                       f"{where}: seqs kernel {kseqs}, model {mseqs}")
        kd = {s: (a, f) for s, a, f in kg}
        md = {s: (a, f) for s, a, f in mg}
        for seq in sorted(set(kd) | set(md)):
            for t, name in enumerate(("anon", "file")):
                kv, mv = kd.get(seq, (0, 0))[t], md.get(seq, (0, 0))[t]
                if abs(kv - mv) > tol:
                    out.append(f"{where}: seq {seq} {name}: kernel {kv}, model {mv} "
                               f"(tolerance {tol})")
        kstat, mstat = k.stat.get(memcg, {}), m.stat.get(memcg, {})
        for key in kstat:
            if key not in mstat:
                out.append(f"{where}: memory.stat {key}: kernel {kstat[key]}, model has none")
                continue
            scale = 1 if key.startswith(_EVENT_PREFIXES) else PAGE_SIZE
            kv, mv = kstat[key] // scale, mstat[key] // scale
            if abs(kv - mv) > tol:
                unit = "" if scale == 1 else " pages"
                out.append(f"{where}: memory.stat {key}: kernel {kv}{unit}, model {mv}{unit} "
                           f"(tolerance {tol})")
    return out


def compare_traces(kernel: Trace, model: Trace) -> list[str]:
    """Every difference, one readable line each ([] when the traces agree)."""
    out = []
    for (i, what, kr), (_, _, mr) in zip(kernel.results, model.results, strict=True):
        if kr != mr:
            out.append(f"step {i} {what}: kernel {kr}, model {mr}")
    for k, m in zip(kernel.snapshots, model.snapshots, strict=True):
        out += _compare_snapshot(k, m)
    return out
