"""sysfs: /sys/kernel/mm/lru_gen/{enabled,min_ttl_ms}.

Kernel: mm/vmscan.c: enabled_store(), min_ttl_ms_store(); v4 2/7.

`*_show` / `*_store` pairs, as in mm/vmscan.c. Stores raise OSError(EINVAL)
and change nothing on a bad value.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import numpy as np

from mglru.lru_gen.folio import lru_gen_add_folio, lru_gen_del_folio
from mglru.lru_gen.helpers import LRU_GEN_CORE
from mglru.lru_gen.kstrto import kstrtouint
from mglru.mm.page import PG_lru, PG_tail

if TYPE_CHECKING:
    from mglru.kernel import SimKernel

__all__ = ["enabled_show", "enabled_store", "min_ttl_ms_show", "min_ttl_ms_store",
           "lru_gen_change_state"]


def enabled_show(k: SimKernel) -> str:
    """`0x%04x\\n` of the caps the hardware and Kconfig have and the keys allow."""
    return f"0x{k.caps.enabled_mask():04x}\n"


def enabled_store(k: SimKernel, buf: str) -> None:
    """n/N: all off; y/Y: all on; else kstrtouint(base 0); per-cap keys. enabled_store()."""
    if not buf:
        return
    first = buf[0].lower()
    if first == "n":
        caps = 0
    elif first == "y":
        caps = (1 << 32) - 1
    else:
        try:
            caps = kstrtouint(buf, 0)
        except OSError:
            raise OSError(errno.EINVAL, "Invalid argument") from None
    for i in range(k.caps.nr_caps):
        on = bool(caps >> i & 1)
        if i == LRU_GEN_CORE:
            lru_gen_change_state(k, on)
        else:
            k.caps.keys[i] = on


def lru_gen_change_state(k: SimKernel, enabled: bool) -> None:
    """Move every folio between the classic lists and MGLRU (fill/drain_evictable)."""
    if enabled == k.caps.lru_gen_enabled():
        return
    k.caps.keys[LRU_GEN_CORE] = enabled
    mem = k.mem
    for node in mem.nodes:
        lo, hi = node.start_pfn, node.fresh
        flags = mem.flags[lo:hi]
        on_lru = (flags & PG_lru != 0) & (flags & PG_tail == 0)
        if enabled:
            sel = on_lru & (mem.gen[lo:hi] == 0)
        else:
            sel = mem.gen[lo:hi] != 0
        pfns = np.nonzero(sel)[0].astype(np.int64) + lo
        memcgs = mem.memcg[pfns]
        for mid in np.unique(memcgs):
            memcg = k.memcgs.by_id.get(int(mid))
            if memcg is None:
                continue
            part = pfns[memcgs == mid]
            lruvec = memcg.lruvecs[node.nid]
            if enabled:
                lru_gen_add_folio(mem, lruvec, part)
            else:
                lru_gen_del_folio(mem, lruvec, part, reclaiming=False)
                mem.flags[part] |= PG_lru  # now on the classic lists


#: ((LONG_MAX >> 1) - 1): what msecs_to_jiffies() returns for a "negative" int
MAX_JIFFY_OFFSET = (((1 << 63) - 1) >> 1) - 1


def min_ttl_ms_show(k: SimKernel) -> str:
    """`%u\\n` of jiffies_to_msecs(lru_gen_min_ttl), which returns an unsigned int."""
    return f"{k.jiffies_to_msecs(k.min_ttl) & 0xFFFFFFFF}\n"


def min_ttl_ms_store(k: SimKernel, buf: str) -> None:
    """kstrtouint(base 0) milliseconds, stored as jiffies. mm/vmscan.c: min_ttl_ms_store().

    msecs_to_jiffies() takes values >= 2**31 ((int)m < 0) as "infinite"
    (MAX_JIFFY_OFFSET). A zero-byte write never reaches the store
    (sysfs_kf_write), as in `enabled_store`.
    """
    if not buf:
        return
    try:
        msecs = kstrtouint(buf, 0)
    except OSError:
        raise OSError(errno.EINVAL, "Invalid argument") from None
    k.min_ttl = MAX_JIFFY_OFFSET if msecs >= 1 << 31 else k.msecs_to_jiffies(msecs)
