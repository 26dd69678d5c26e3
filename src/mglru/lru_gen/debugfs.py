"""debugfs: /sys/kernel/debug/lru_gen and lru_gen_full.

Kernel: mm/vmscan.c: lru_gen_seq_show(), lru_gen_seq_write(); v6.10 differences noted.

Reads print every memcg (pre-order, root first) and every node with memory in
the kernel's printf shapes. Writes are split on `,` `;` `\\n`, parsed with the
kernel's vsscanf() rules (`lru_gen_seq_write`) and executed by `run_cmd` in
order; the first error stops the write and is returned, earlier commands keep
their effect, as in the kernel.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from mglru.lru_gen.aging import try_to_inc_max_seq
from mglru.lru_gen.eviction import get_swappiness, run_eviction
from mglru.lru_gen.helpers import (
    ANON_AND_FILE,
    MAX_NR_GENS,
    MAX_NR_TIERS,
    MM_STATS_V6_10,
    MM_STATS_V6_12,
    SWAPPINESS_ANON_ONLY,
    lru_gen_from_seq,
    lru_hist_from_seq,
)
from mglru.lru_gen.kstrto import KERNEL_SPACES, ScanFail, Scanner, kstrtouint
from mglru.mm.memcg import MAX_SWAPPINESS

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.lru_gen.lruvec import Lruvec

__all__ = ["lru_gen_show", "lru_gen_full_show", "lru_gen_write", "run_cmd"]

MAX_NUMNODES = 1024
_U32 = 1 << 32


def _einval() -> OSError:
    return OSError(errno.EINVAL, "Invalid argument")


# -- read ----------------------------------------------------------------------------
def _show_full(k: SimKernel, lruvec: Lruvec, seq: int, out: list[str]) -> None:
    """Tier lines and the mm_stats line after a generation line (lru_gen_full)."""
    hist = lru_hist_from_seq(seq, lruvec.nr_hist_gens)
    shift = 0 if k.cfg.protect_in_inc_min_seq else 1
    for tier in range(MAX_NR_TIERS):
        line = [f"            {tier:10d}"]
        for type_ in range(ANON_AND_FILE):
            marks, n = "xxx", [0, 0, 0]
            if seq == lruvec.max_seq:
                marks = "RTx"
                n = [int(lruvec.avg_refaulted[type_, tier]), int(lruvec.avg_total[type_, tier]), 0]
            elif seq == lruvec.min_seq[type_] or lruvec.nr_hist_gens > 1:
                marks = "rep"
                prot = int(lruvec.protected[hist, type_, tier - shift]) if tier >= shift else 0
                n = [int(lruvec.refaulted[hist, type_, tier]),
                     int(lruvec.evicted[hist, type_, tier]), prot]
            line += [f" {max(v, 0):10d}{m}" for v, m in zip(n, marks, strict=False)]
        out.append("".join(line) + "\n")
    st = lruvec.mm_state
    if st is None:
        return
    items = MM_STATS_V6_12 if k.cfg.nr_mm_stats == 4 else MM_STATS_V6_10
    upper, lower = ("TYFA", "tyfa") if k.cfg.nr_mm_stats == 4 else ("TOYDFA", "toydfa")
    line = ["                      "]
    for i, item in enumerate(items):
        mark, n = "x", 0
        if seq == lruvec.max_seq and lruvec.nr_hist_gens == 1:
            mark, n = upper[i], int(st.stats[hist, item])
        elif seq != lruvec.max_seq and lruvec.nr_hist_gens > 1:
            mark, n = lower[i], int(st.stats[hist, item])
        line.append(f" {n:10d}{mark}")
    out.append("".join(line) + "\n")


def _show(k: SimKernel, full: bool) -> str:
    out: list[str] = []
    now = k.jiffies
    for memcg in k.memcgs.root.iter_preorder():
        for lruvec in memcg.lruvecs:
            if lruvec.nid == 0:
                out.append(f"memcg {memcg.id & 0xFFFF:5d} {memcg.path}\n")
            out.append(f" node {lruvec.nid:5d}\n")
            max_seq = lruvec.max_seq
            if not full:
                seq = min(lruvec.min_seq)
            elif max_seq >= MAX_NR_GENS:
                seq = max_seq - MAX_NR_GENS + 1
            else:
                seq = 0
            for s in range(seq, max_seq + 1):
                gen = lru_gen_from_seq(s)
                age = k.jiffies_to_msecs(now - lruvec.timestamps[gen]) % _U32
                line = [f" {s:10d} {age:10d}"]
                for type_ in range(ANON_AND_FILE):
                    mark = "x" if full and s < lruvec.min_seq[type_] else " "
                    line.append(f" {lruvec.nr_pages_of_seq(s, type_):10d}{mark}")
                out.append("".join(line) + "\n")
                if full:
                    _show_full(k, lruvec, s, out)
    return "".join(out)


def lru_gen_show(k: SimKernel) -> str:
    """Contents of /sys/kernel/debug/lru_gen."""
    return _show(k, False)


def lru_gen_full_show(k: SimKernel) -> str:
    """Contents of /sys/kernel/debug/lru_gen_full."""
    return _show(k, True)


# -- write ---------------------------------------------------------------------------
def run_aging(k: SimKernel, lruvec: Lruvec, seq: int, swappiness: int, force_scan: bool) -> None:
    """The `+` command. mm/vmscan.c: run_aging(); v6.10 return codes differ."""
    max_seq = lruvec.max_seq
    if k.cfg.aging_rc_eexist:
        if seq > max_seq:
            raise _einval()
        if not try_to_inc_max_seq(k, lruvec, max_seq, swappiness, force_scan):
            raise OSError(errno.EEXIST, "File exists")
        return
    if seq < max_seq:
        return
    if seq > max_seq:
        raise _einval()
    type_ = 0 if swappiness else 1
    if not force_scan and lruvec.min_seq[type_] + MAX_NR_GENS - 1 <= max_seq:
        raise OSError(errno.ERANGE, "Numerical result out of range")
    try_to_inc_max_seq(k, lruvec, max_seq, swappiness, force_scan)


def run_cmd(k: SimKernel, cmd: str, memcg_id: int, nid: int, seq: int, swappiness: int,
            opt: int) -> None:
    """Validate and execute one command. mm/vmscan.c: run_cmd()."""
    nid = nid - _U32 if nid >= 1 << 31 else nid  # the kernel passes them as int
    memcg_id = memcg_id - _U32 if memcg_id >= 1 << 31 else memcg_id
    if nid < 0 or nid >= MAX_NUMNODES or nid >= len(k.mem.nodes):
        raise _einval()
    memcg = k.memcgs.by_id.get(memcg_id)
    if memcg is None:
        raise _einval()
    lruvec = memcg.lruvecs[nid]
    swappiness = swappiness - _U32 if swappiness >= 1 << 31 else swappiness
    limit = SWAPPINESS_ANON_ONLY if k.cfg.swappiness_max_token else MAX_SWAPPINESS
    if swappiness < 0:
        swappiness = get_swappiness(k, lruvec)
    elif swappiness > limit:
        raise _einval()
    if cmd == "+":
        run_aging(k, lruvec, seq, swappiness, opt != 0)
    elif cmd == "-":

        run_eviction(k, lruvec, seq, swappiness, opt)
    else:
        raise _einval()


def _parse(k: SimKernel, cur: str) -> tuple[str, int, int, int, int, int]:
    """sscanf(cur, "%c %u %u %lu %n%u %n%lu %n") (v6.16: "%4s" for swappiness)."""
    sc = Scanner(cur)
    got: list = []
    end = 0
    swap_token: str | None = None
    try:
        got.append(sc.char())
        sc.skip_spaces()
        got.append(sc.unsigned(32))
        sc.skip_spaces()
        got.append(sc.unsigned(32))
        sc.skip_spaces()
        got.append(sc.unsigned(64))
        sc.skip_spaces()
        end = sc.pos
        if k.cfg.swappiness_max_token:
            swap_token = sc.string(4)
            got.append(swap_token)
        else:
            got.append(sc.unsigned(32))
        sc.skip_spaces()
        end = sc.pos
        got.append(sc.unsigned(64))
        sc.skip_spaces()
        end = sc.pos
    except ScanFail:
        pass
    if len(got) < 4 or end < len(cur):
        raise _einval()
    cmd, memcg_id, nid, seq = got[:4]
    swappiness = _U32 - 1  # "not given": -1 as an int
    if len(got) > 4:
        if swap_token is None:
            swappiness = got[4]
        elif swap_token == "max":
            swappiness = SWAPPINESS_ANON_ONLY
        else:
            swappiness = kstrtouint(swap_token, 0)
    opt = got[5] if len(got) > 5 else (1 << 64) - 1
    return cmd, memcg_id, nid, seq, swappiness, opt


def lru_gen_write(k: SimKernel, buf: str) -> None:
    """Execute the commands of one write. mm/vmscan.c: lru_gen_seq_write().

    lru_gen_seq_write() (mm/vmscan.c, v6.12) starts from err = -EINVAL and
    only a command that runs clears it, so a write with no command at all
    (empty, separators or white space only, or a NUL first) fails with EINVAL.
    The buffer is a C string: a NUL ends it.
    """
    buf = buf.split("\0", 1)[0]
    ran = False
    for piece in buf.replace(";", ",").replace("\n", ",").split(","):
        cur = piece.lstrip(KERNEL_SPACES)
        if not cur:
            continue
        run_cmd(k, *_parse(k, cur))
        ran = True
    if not ran:
        raise _einval()
