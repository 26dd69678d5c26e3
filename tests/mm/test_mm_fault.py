"""Page faults and user accesses: where new folios land (spec §2.5) and what they map.

The process API (docs/architecture.md, "Processes"): anonymous, THP and file
faults, the zero pages, the page cache shared between tasks, charging, and
placement with MGLRU on, off and without recency.
"""

from __future__ import annotations

import numpy as np
import pytest
from kernel_checks import (
    CGROOT,
    ENABLED,
    LRU_GEN,
    check_invariants,
    parse_lru_gen,
    pmd_of,
    pte_of,
)

from mglru import SimKernel
from mglru.mm.page import (
    PMD_HUGE_ZERO,
    PMD_LEAF,
    PMD_TABLE,
    PTE_DIRTY,
    PTE_PRESENT,
    PTE_SPECIAL,
    PTE_YOUNG,
    PG_active,
    PG_head,
    PG_tail,
)

PAGE = 4096


@pytest.fixture
def k() -> SimKernel:
    k = SimKernel("v6.14", node_bytes=(64 << 20,), debug=True)
    k.mkdir(CGROOT + "/a")
    return k


def current(k: SimKernel, path: str = "/a") -> int:
    return int(k.read(CGROOT + path + "/memory.current"))


def by_seq(k: SimKernel, memcg_id: int = 2) -> dict[int, tuple[int, int]]:
    return {g.seq: (g.anon, g.file)
            for g in parse_lru_gen(k.read(LRU_GEN))[memcg_id].nodes[0].gens}


def test_anon_read_fault_maps_the_zero_page(k: SimKernel) -> None:
    """An anonymous read fault maps the shared zero page (present, special, young) and
    allocates nothing; a later write allocates a folio in max_seq - 1 and charges it."""
    p = k.spawn(memcg="/a")
    a = p.mmap(4 * PAGE)
    p.access(a, 4 * PAGE)
    pfn, bits = pte_of(p, a)
    want = PTE_PRESENT | PTE_SPECIAL | PTE_YOUNG
    assert pfn == 0 and bits & want == want
    assert current(k) == 0 and sum(a + f for a, f in by_seq(k).values()) == 0
    p.access(a, PAGE, write=True)
    pfn, bits = pte_of(p, a)
    assert pfn >= 1024 and bits & PTE_DIRTY and not bits & PTE_SPECIAL
    assert by_seq(k)[2] == (1, 0) and current(k) == PAGE
    assert pte_of(p, a + PAGE)[0] == 0  # the other pages still map the zero page


def test_thp_faults(k: SimKernel) -> None:
    """A THP VMA gets a PMD-sized folio per fully covered aligned 2 MiB block on a write
    fault (head + 511 tails, one folio of 512 pages in max_seq - 1), the huge zero page
    on a read fault, and 4 KiB pages where a block is not fully inside the VMA."""
    p = k.spawn(memcg="/a")
    t = p.mmap((4 << 20) + 8 * PAGE, thp=True)
    p.access(t, 2 << 20, write=True)
    state, bits, head = pmd_of(p, t)
    assert state == PMD_LEAF and bits & PTE_YOUNG
    assert k.mem.flags[head] & PG_head and head % 512 == 0
    assert (k.mem.flags[head + 1:head + 512] & PG_tail).all()
    p.access(t + (2 << 20), PAGE)  # read fault in the second block
    assert pmd_of(p, t + (2 << 20))[0] == PMD_HUGE_ZERO
    p.access(t + (4 << 20), 8 * PAGE, write=True)  # the tail is not a whole block
    assert pmd_of(p, t + (4 << 20))[0] == PMD_TABLE
    assert by_seq(k)[2] == (512 + 8, 0)
    assert current(k) == (512 + 8) * PAGE
    check_invariants(k)


def test_page_cache_is_shared(k: SimKernel) -> None:
    """Two tasks mapping the same file page share one folio, charged to the memcg that
    first brought it in; read(2) of a cached page allocates nothing."""
    k.mkdir(CGROOT + "/b")
    p, q = k.spawn(memcg="/a"), k.spawn(memcg="/b")
    f = k.open_file("f", 8 * PAGE)
    pm, qm = p.mmap(8 * PAGE, file=f), q.mmap(8 * PAGE, file=f)
    p.access(pm, 4 * PAGE)
    q.access(qm, 8 * PAGE)
    q.read(f, 0, 8 * PAGE)
    assert [pte_of(p, pm + i * PAGE)[0] for i in range(4)] == \
        [pte_of(q, qm + i * PAGE)[0] for i in range(4)]
    assert current(k, "/a") == 4 * PAGE and current(k, "/b") == 4 * PAGE
    assert by_seq(k, 2)[2] == (0, 4) and by_seq(k, 3)[2] == (0, 4)
    check_invariants(k)


def test_placement_without_recency(k: SimKernel) -> None:
    """Spec §2.5: faults in a VMA without recency (VM_SEQ_READ, or a FMODE_NOREUSE file)
    are not LRU-tracked, so no PG_active: file folios go to max_seq - 3 (rule 4), anon
    folios to max_seq - 1 (rule 3: anon not in the swap cache)."""
    p = k.spawn(memcg="/a")
    f = k.open_file("f", 4 * PAGE)
    nr = k.open_file("nr", 4 * PAGE, noreuse=True)
    seq_file = p.mmap(4 * PAGE, file=f, flags=("seq_read",))
    noreuse = p.mmap(4 * PAGE, file=nr)
    seq_anon = p.mmap(4 * PAGE, flags=("rand_read",))
    p.access(seq_file, 4 * PAGE)
    p.access(noreuse, 4 * PAGE)
    p.access(seq_anon, 4 * PAGE, write=True)
    assert by_seq(k) == {0: (0, 8), 1: (0, 0), 2: (4, 0), 3: (0, 0)}
    assert not (k.mem.flags[f.pages] & PG_active).any()


@pytest.mark.parametrize("preset", ["v6.10", "v6.14"])
def test_faults_while_mglru_is_off(preset: str) -> None:
    """With the MGLRU core off (`enabled` bit 0 clear) folio_add_lru() does not set
    PG_active (it does so only under lru_gen_enabled() in an LRU-tracked fault): new
    folios sit on the inactive classic lists. Turning MGLRU back on (fill_evictable,
    spec §5.1) then places them: anon in max_seq - 1 (anon not in the swap cache), file
    in max_seq - 3 on v6.14 (lru_gen_folio_seq()) and, with four generations, in
    min_seq + 1 before (include/linux/mm_inline.h lru_gen_add_folio())."""
    k = SimKernel(preset, node_bytes=(64 << 20,), debug=True)
    k.mkdir(CGROOT + "/a")
    p = k.spawn(memcg="/a")
    k.write(ENABLED, "6")
    f = k.open_file("f", 4 * PAGE)
    fm = p.mmap(4 * PAGE, file=f)
    a = p.mmap(4 * PAGE)
    p.access(fm, 4 * PAGE)
    p.access(a, 4 * PAGE, write=True)
    assert not k.mem.gen[f.pages].any()
    assert not (k.mem.flags[f.pages] & PG_active).any()
    k.write(ENABLED, "7")
    file_seq = 0 if preset == "v6.14" else 1
    want = {0: (0, 0), 1: (0, 0), 2: (4, 0), 3: (0, 0)}
    want[file_seq] = (0, 4)
    assert by_seq(k) == want
    check_invariants(k)


def test_access_outside_a_mapping_is_sigsegv(k: SimKernel) -> None:
    """Touching an unmapped address, or a file page beyond the end, raises (SIGSEGV /
    SIGBUS) instead of inventing memory."""
    p = k.spawn(memcg="/a")
    a = p.mmap(4 * PAGE)
    with pytest.raises(ValueError):
        p.access(a, 5 * PAGE)
    f = k.open_file("f", 2 * PAGE)
    fm = p.mmap(4 * PAGE, file=f)
    with pytest.raises(ValueError):
        p.access(fm, 4 * PAGE)
    assert np.count_nonzero(k.mem.memcg) == 0 or current(k) >= 0
