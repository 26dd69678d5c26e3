"""KernelConfig: Kconfig options, boot/runtime defaults and version semantics.

One frozen, slotted dataclass selects behaviour at the few places where the
modelled kernels differ. Presets name the versions users ask about; each entry
says what differs and where that comes from (kernel version or patch of the v4 series).
Code never branches on a preset *name*: it asks capability fields such as
`cfg.two_step_promotion` or the predicates in `lru_gen.state`.

See docs/architecture.md, "Presets", for the table of differences.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KernelConfig", "PRESETS", "Rules", "resolve_config", "rules_of"]

SECONDARY_WALK_MODES = ("none", "seed-v4", "notify", "bitmap", "fast-only")
LOOK_AROUND_MODES = ("v6.10", "seed-v4", "v6.12", "bitmap", "fast-only")
KVM_AGING_MODES = ("write-lock", "seed-v4", "seed-v4-noopt", "lockless")
ARCHES = ("x86", "arm64", "riscv", "loongarch", "mips", "powerpc")
SWAP_DEVICES = ("sync", "ssd", "hdd")


@dataclass(frozen=True, slots=True)
class KernelConfig:
    """The configuration of one simulated kernel.

    Attributes are grouped as hardware, Kconfig, boot/runtime defaults and
    version semantics. Unknown keys given to `resolve_config` are rejected with
    the list of valid ones.
    """

    name: str = "v6.10"
    # -- hardware -------------------------------------------------------------
    arch: str = "x86"
    #: arch_has_hw_pte_young(): the MMU sets PTE accessed bits (x86, arm64 with HAFDBS)
    hw_pte_young: bool = True
    #: arch_has_hw_nonleaf_pmd_young(): x86 bare metal sets non-leaf accessed bits
    hw_nonleaf_pmd_young: bool = True
    #: bytes per node; one entry per NUMA node
    node_bytes: tuple[int, ...] = (128 << 30,)
    # -- Kconfig --------------------------------------------------------------
    #: CONFIG_LRU_GEN_ENABLED: MGLRU on at boot
    lru_gen_enabled: bool = True
    #: CONFIG_LRU_GEN_STATS: NR_HIST_GENS = 4 instead of 1
    lru_gen_stats: bool = False
    #: CONFIG_LRU_GEN_WALKS_SECONDARY_MMU (v4 1/7); only read where the
    #: secondary walk mode is "seed-v4"
    walks_secondary_mmu: bool = False
    #: CONFIG_DEBUG_VM analogue: warn_on_once raises instead of recording
    debug: bool = False
    #: CONFIG_HZ: jiffies per second (min_ttl_ms and ages round through it)
    hz: int = 1000
    # -- boot / runtime defaults ----------------------------------------------
    swappiness: int = 60
    #: swap space in pages (0 = no swap device: anon is not reclaimable)
    swap_pages: int = 1 << 30
    #: kswapd runs when an allocation would take a node below its low watermark
    #: (off: only direct reclaim, when a node has no free page left)
    kswapd: bool = True
    #: the swap device (`mglru.mm.swap`): "sync" (SWP_SYNCHRONOUS_IO, zram/brd: anonymous
    #: swap-ins bypass the swap cache), "ssd" (swap cache, VMA readahead) or "hdd"
    #: (rotational: swap cache, cluster readahead)
    swap_device: str = "sync"
    #: /proc/sys/vm/page-cluster at boot; None: swap_setup()'s choice (mm/swap.c, 6.1 and
    #: 6.12: 2 below 16 MiB of memory, else 3)
    page_cluster: int | None = None
    #: /sys/kernel/mm/swap/vma_ra_enabled at boot (mm/swap_state.c: true)
    vma_ra_enabled: bool = True
    # -- version semantics ----------------------------------------------------
    #: how aging consults secondary MMUs (v4 2/7)
    secondary_walk: str = "none"
    #: how look-around consults secondary MMUs (mm/vmscan.c: lru_gen_look_around(); v4 2/7)
    look_around: str = "v6.10"
    #: number of mm_stats shown by lru_gen_full: 6 before v6.12, 4 after
    nr_mm_stats: int = 6
    #: 6.1: lru_gen_refault() counts workingset_refault_* only for refaults it finds
    #: recent and never counts workingset_activate_* (mm/workingset.c, 6.1); later
    #: versions count every refault and activate the recent ones
    refault_stats_only_recent: bool = False
    #: v6.12 "ignore non-leaf pmd_young for force_scan=true"
    nonleaf_young_respects_force_scan: bool = False
    #: v6.14 rework: first young detection only sets PG_referenced (folio_mark_accessed())
    two_step_promotion: bool = False
    #: v6.14 rework: debugfs `+` returns -EEXIST instead of 0/-ERANGE (v6.10)
    aging_rc_eexist: bool = False
    #: v6.14 rework: lru_gen_folio_seq() places entering folios by PG_workingset
    #: (active ones in max_seq - 1 unless workingset); before, every active folio
    #: enters max_seq (include/linux/mm_inline.h: lru_gen_add_folio(), 6.1-6.13)
    workingset_folio_seq: bool = False
    #: v6.14: a PTE table whose lock is contended is reported suitable for the next
    #: Bloom filter without a scan; before, walk_pte_range() returns false on a failed
    #: spin_trylock() (mm/vmscan.c, 6.1-6.13)
    contended_pte_table_suitable: bool = False
    #: an active folio entering MGLRU loses its tier: refs and PG_referenced are cleared
    #: with PG_active (include/linux/mm_inline.h: lru_gen_add_folio(), 6.9-6.13, read in
    #: 6.12); 6.1 clears only PG_active, so a put-back folio keeps the refs that set its
    #: tier, and so does the v6.14 rework, whose refaults restore refs - 1 instead
    active_add_resets_tier: bool = True
    #: v6.14 rework: inc_min_seq counts moved folios as protected (mm/vmscan.c: inc_min_seq())
    protect_in_inc_min_seq: bool = False
    #: v6.14 rework: anon and file min_seq move independently (v6.10: coupled)
    independent_min_seq: bool = False
    #: should_run_aging() asks for aging whenever only MIN_NR_GENS + 1 generations are
    #: left (the v6.14 rework); False: it asks then only when max_seq holds over 1/2 of
    #: the pages or max_seq - 2 under 1/4, as mm/vmscan.c should_run_aging() does in 6.1
    #: and 6.12 (read in both sources), and so in the versions between
    aging_on_three_gens: bool = False
    #: 6.1's lru_gen reclaim loop (mm/vmscan.c 6.1): get_nr_to_scan() goes on evicting
    #: after it aged; should_abort_scan() stops a memcg's loop once it aged twice, or
    #: once the goal is met after an anon batch (over-swapping); shrink_node_memcgs()
    #: finishes its round of the memcg tree before do_try_to_free_pages() checks the goal;
    #: memory.reclaim asks for all that is left at once and takes no tokens
    #: (mm/memcontrol.c memory_reclaim(), 6.1)
    reclaim_rules_6_1: bool = False
    #: should_abort_scan() stops memcg reclaim too once the goal is met (mm/vmscan.c
    #: 6.12); False: only root reclaim stops early, memcg reclaim scans on for fairness
    abort_memcg_scan_at_goal: bool = False
    #: v6.16: debugfs swappiness token `max` = anon only (mm/vmscan.c: lru_gen_seq_write())
    swappiness_max_token: bool = False
    #: the page-cluster sysctl takes 0..page_cluster_max = 31 (include/linux/mm.h, mm/swap.c
    #: 6.12); 6.1 has no page_cluster_max and takes any int >= 0
    page_cluster_capped: bool = True
    #: v6.15: memory.reclaim counts in pgscan/pgsteal_proactive, not _direct
    #: (mm/vmstat.c)
    proactive_reclaim_stats: bool = False
    # -- KVM (virt/kvm, v4 3-6/7) -----------------------------------------------
    #: how KVM ages (docs/architecture.md, "Secondary MMUs"): write-lock (common
    #: mmu_lock, v6.10-v6.14), seed-v4 (3-6/7: lockless memslot walk, locks per
    #: arch), seed-v4-noopt (patches 1, 2, 7: KVM as write-lock), lockless (v6.15:
    #: x86 without mmu_lock, others as write-lock)
    kvm_aging: str = "write-lock"
    #: x86 >= v6.13 selects KVM_ELIDE_TLB_FLUSH_IF_YOUNG
    kvm_elide_tlb_flush_if_young: bool = False
    #: x86 memslot address spaces: 2 when SMM is built in (other arches have 1)
    kvm_nr_address_spaces: int = 2
    #: free-form notes shown by `mglru presets`
    notes: str = field(default="", compare=False)

    @property
    def nr_hist_gens(self) -> int:
        """NR_HIST_GENS: 4 with CONFIG_LRU_GEN_STATS, else 1 (include/linux/mmzone.h)."""
        return 4 if self.lru_gen_stats else 1

    def replace(self, **overrides: Any) -> KernelConfig:
        """A copy with some fields changed; unknown keys raise TypeError."""
        _check_keys(overrides)
        return dataclasses.replace(self, **overrides)

    def __post_init__(self) -> None:
        _check_choice("secondary_walk", self.secondary_walk, SECONDARY_WALK_MODES)
        _check_choice("look_around", self.look_around, LOOK_AROUND_MODES)
        _check_choice("kvm_aging", self.kvm_aging, KVM_AGING_MODES)
        _check_choice("arch", self.arch, ARCHES)
        _check_choice("swap_device", self.swap_device, SWAP_DEVICES)
        if self.page_cluster is not None and self.page_cluster < 0:
            raise ValueError(f"page_cluster must be >= 0, got {self.page_cluster}")
        if self.nr_mm_stats not in (4, 6):
            raise ValueError(f"nr_mm_stats must be 4 or 6, got {self.nr_mm_stats}")
        if not self.node_bytes or any(b <= 0 or b % (2 << 20) for b in self.node_bytes):
            raise ValueError("node_bytes must be positive multiples of 2 MiB, "
                             f"got {self.node_bytes}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _check_keys(overrides: dict[str, Any]) -> None:
    valid = {f.name for f in dataclasses.fields(KernelConfig)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise TypeError(
            f"unknown KernelConfig key(s) {', '.join(unknown)}; "
            f"valid keys: {', '.join(sorted(valid))}"
        )


_V6_10 = KernelConfig(
    name="v6.10",
    notes="The base the seed applies to; ages like the 6.1 LTS (mm/vmscan.c, v6.10). Aging "
    "ignores secondary MMUs; look-around then ptep_clear_flush_young_notify in rmap.",
)
_V6_1 = _V6_10.replace(
    name="v6.1",
    refault_stats_only_recent=True,
    active_add_resets_tier=False,
    reclaim_rules_6_1=True,
    page_cluster_capped=False,
    notes="The 6.1 LTS. Modelled differences from v6.10: mm/workingset.c lru_gen_refault() "
    "returns early for a refault that is not recent (shadow seq != min_seq), so "
    "workingset_refault_* counts only recent ones, and it never counts "
    "workingset_activate_*; include/linux/mm_inline.h lru_gen_add_folio() clears only "
    "PG_active of an active folio, which keeps its refs (tier); should_run_aging()'s "
    "young/old balance, 6.1's get_nr_to_scan(), should_abort_scan() and whole rounds of "
    "shrink_node_memcgs() for memcg reclaim; /proc/sys/vm/page-cluster without the upper "
    "bound of 31 (no page_cluster_max in 6.1). Same as v6.10: 6 mm_stats letters, "
    "lru_gen_add_folio()'s placement, one-step promotion, coupled min_seq. Not modelled: "
    "no memcg LRU "
    "(reclaim walks memcgs with shrink_node_memcgs()); mm/memory.c "
    "lru_gen_enter_fault() knows only VM_SEQ_READ/VM_RAND_READ (no FMODE_NOREUSE: "
    "POSIX_FADV_NOREUSE files keep recency).",
)
_SEED_V4 = _V6_10.replace(
    name="seed-v4",
    walks_secondary_mmu=True,
    secondary_walk="seed-v4",
    look_around="seed-v4",
    kvm_aging="seed-v4",
    notes="All seven v4 patches: Kconfig + cap 0x8 (1-2/7), lockless memslot walk (3/7), "
    "per-arch locks (4-6/7), selftest (7/7). clear_flush_young keeps the common mmu_lock, "
    "so where the arch handler locks too (arm64, spinlock arches, x86 with shadow pages) "
    "evicting a VM's PMD-mapped THP self-deadlocks: the model raises KernelDeadlock.",
)
_SEED_V4_NOOPT = _SEED_V4.replace(
    name="seed-v4-noopt",
    kvm_aging="seed-v4-noopt",
    notes="v4 patches 1, 2 and 7 only: MGLRU walks secondary MMUs, KVM ages under the "
    "write-held mmu_lock. The cover letter's 'no opt'.",
)
_V6_12 = _V6_10.replace(
    name="v6.12",
    secondary_walk="notify",
    look_around="v6.12",
    nr_mm_stats=4,
    nonleaf_young_respects_force_scan=True,
    abort_memcg_scan_at_goal=True,
    notes="Upstream {ptep,pmdp}_clear_young_notify() (include/linux/mmu_notifier.h, "
    "mm/vmscan.c walk_pte_range, v6.12), 4 mm_stats, non-leaf young ignored for force_scan, "
    "should_run_aging()'s young/old balance with MIN_NR_GENS + 1 generations, "
    "should_abort_scan() ending memcg reclaim at its goal.",
)
_V6_14 = _V6_12.replace(
    name="v6.14",
    two_step_promotion=True,
    workingset_folio_seq=True,
    contended_pte_table_suitable=True,
    active_add_resets_tier=False,
    aging_rc_eexist=True,
    protect_in_inc_min_seq=True,
    independent_min_seq=True,
    aging_on_three_gens=True,
    kvm_elide_tlb_flush_if_young=True,
    notes="v6.12 plus the Dec-2024 MGLRU rework (two-step promotion, -EEXIST from `+`, "
    "protected counts in inc_min_seq, independent min_seq; an active folio entering the "
    "LRU keeps its refs) and v6.13 TLB-flush elision.",
)
_V6_15 = _V6_14.replace(
    name="v6.15",
    kvm_aging="lockless",
    proactive_reclaim_stats=True,
    notes="v6.14 plus lockless KVM aging (x86 TDP under RCU without retry; shadow MMU rmap "
    "bit-lock; arch/x86/kvm/mmu/tdp_mmu.c, v6.15); other arches keep the write lock "
    "(virt/kvm/kvm_main.c kvm_handle_hva_range); pgsteal/pgscan_proactive.",
)
_V6_16 = _V6_15.replace(
    name="v6.16",
    swappiness_max_token=True,
    notes="v6.15 plus `max` as the debugfs swappiness token (mm/vmscan.c "
    "lru_gen_seq_write, v6.16).",
)
_V3_BITMAP = _V6_12.replace(
    name="v3-bitmap",
    secondary_walk="bitmap",
    look_around="bitmap",
    kvm_aging="seed-v4",
    notes="What-if from the review thread (Yu Zhao): secondary MMUs walked and looked around "
    "only where aging is lockless; one notifier call covers up to 64 PTEs via a bitmap.",
)
_V5_FAST_ONLY = _V6_12.replace(
    name="v5-fast-only",
    secondary_walk="fast-only",
    look_around="fast-only",
    kvm_aging="seed-v4",
    notes="What-if from the thread (Sean, v5): a fast-only test/clear notifier; MGLRU skips "
    "secondary MMUs that cannot answer fast.",
)

PRESETS: dict[str, KernelConfig] = {
    c.name: c
    for c in (_V6_1, _V6_10, _SEED_V4, _SEED_V4_NOOPT, _V6_12, _V6_14, _V6_15, _V6_16,
              _V3_BITMAP, _V5_FAST_ONLY)
}


def resolve_config(config: str | KernelConfig = "v6.10", **overrides: Any) -> KernelConfig:
    """Return a KernelConfig from a preset name or instance plus overrides.

    Raises:
        ValueError: the preset name is unknown (the valid names are listed).
        TypeError: an override key is unknown (the valid keys are listed).
    """
    if isinstance(config, KernelConfig):
        base = config
    else:
        try:
            base = PRESETS[config]
        except KeyError:
            raise ValueError(
                f"unknown preset {config!r}; valid presets: {', '.join(PRESETS)}"
            ) from None
    return base.replace(**overrides) if overrides else base


# -- version rules ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Rules:
    """What a configuration does, decided once at boot (`rules_of`).

    The preset vocabulary above names versions (`secondary_walk="seed-v4"`); the
    rest of the model asks these behaviour-named questions instead, so no code
    outside this module compares against a version name.
    """

    # -- lru_gen/enabled -------------------------------------------------------------
    #: NR_LRU_GEN_CAPS: 4 with the seed's cap 0x8 (v4 2/7), else 3
    nr_lru_gen_caps: int
    #: the secondary walk needs CONFIG_LRU_GEN_WALKS_SECONDARY_MMU and cap 0x8 (v4 2/7)
    secondary_walk_gated: bool
    # -- the aging walk (mm/vmscan.c: walk_pte_range, walk_pmd_range_locked) ---------
    #: aging consults secondary MMUs at all
    walk_secondary: bool
    #: v4 2/7: a PTE old in the primary MMU asks test_young first; clear_young only
    #: for the ones a secondary MMU reports young
    walk_tests_young: bool
    #: v6.12: every PTE goes through {ptep,pmdp}_clear_young_notify()
    walk_clears_young_notify: bool
    #: the v5 what-if: only subscribers that answer a fast-only test/clear are asked
    walk_fast_only: bool
    #: the v3 what-if: an mm whose secondary MMUs cannot all age locklessly is not walked
    walk_needs_all_fast: bool
    #: the v3 what-if: one notifier call covers up to 64 PTEs through a bitmap
    secondary_bitmap_batch: bool
    # -- where a folio enters (include/linux/mm_inline.h) -----------------------------
    #: v6.14 lru_gen_folio_seq(): placement by PG_workingset (an active folio goes to
    #: max_seq - 1 unless workingset); before, lru_gen_add_folio() puts every active
    #: folio in max_seq and inactive ones by their distance from min_seq
    folio_seq_by_workingset: bool
    #: an active folio entering MGLRU has its refs and PG_referenced cleared (6.12)
    active_add_resets_tier: bool
    # -- look-around (mm/vmscan.c: lru_gen_look_around, mm/rmap.c) --------------------
    #: v6.10: folio_referenced_one() calls look-around for a young PTE and then still
    #: ptep_clear_flush_young_notify(); look-around itself sees only primary PTEs
    look_around_then_clear_flush: bool
    #: v4 2/7: the target PTE asks the secondary MMUs (clear_young) before the primary
    look_around_target_secondary_first: bool
    #: v6.12: the target and the window go through ptep_clear_young_notify()
    look_around_notify: bool
    #: the v3/v5 what-ifs: the window asks only subscribers that can answer fast
    look_around_window_fast_only: bool
    #: v4 and later: a one-page window returns early, unlisted folios are skipped
    look_around_skips_lone_and_unlisted: bool
    # -- KVM (virt/kvm/kvm_main.c, arch/*/kvm) ----------------------------------------
    #: v4 4/7: mmu_lock moves from kvm_handle_hva_range() into each arch's handler
    kvm_arch_aging_locks: bool
    #: v4 3/7: test_young/clear_young walk the memslots without mmu_lock
    kvm_lockless_test_clear_young: bool
    #: v6.15: all aging notifiers lockless where the arch selects
    #: KVM_MMU_LOCKLESS_AGING
    kvm_lockless_aging: bool
    #: x86 TDP ages A/D SPTEs by atomic fetch-and under RCU (v4 5/7, v6.15)
    kvm_tdp_atomic_aging: bool
    #: v4 5/7: a lost cmpxchg on an access-tracked SPTE retries while it is a present
    #: leaf (v6.15 gives up after one try)
    kvm_cmpxchg_retry: bool
    #: the v5 what-if: x86 answers the fast-only call from the TDP MMU and declines
    #: only while shadow-MMU SPTEs exist, not whenever a nested guest has run
    kvm_fast_only_tdp_answers: bool
    # -- swap (kernel/sysctl.c vm_table, mm/swap.c) ------------------------------------
    #: the largest value /proc/sys/vm/page-cluster accepts, None: no upper bound
    page_cluster_max: int | None


def rules_of(cfg: KernelConfig) -> Rules:
    """The behaviour rules of a configuration (cached: configs are immutable)."""
    return _rules_cached(cfg)


@functools.lru_cache(maxsize=64)
def _rules_cached(cfg: KernelConfig) -> Rules:
    walk, la, kvm = cfg.secondary_walk, cfg.look_around, cfg.kvm_aging
    what_if = la in ("bitmap", "fast-only")
    return Rules(
        nr_lru_gen_caps=4 if walk == "seed-v4" else 3,
        secondary_walk_gated=walk == "seed-v4",
        walk_secondary=walk != "none",
        walk_tests_young=walk == "seed-v4",
        walk_clears_young_notify=walk in ("notify", "bitmap", "fast-only"),
        walk_fast_only=walk == "fast-only",
        walk_needs_all_fast=walk == "bitmap",
        secondary_bitmap_batch=walk == "bitmap",
        folio_seq_by_workingset=cfg.workingset_folio_seq,
        active_add_resets_tier=cfg.active_add_resets_tier,
        look_around_then_clear_flush=la == "v6.10",
        look_around_target_secondary_first=la == "seed-v4",
        look_around_notify=la in ("v6.12", "bitmap", "fast-only"),
        look_around_window_fast_only=what_if,
        look_around_skips_lone_and_unlisted=la != "v6.10",
        kvm_arch_aging_locks=kvm == "seed-v4",
        kvm_lockless_test_clear_young=kvm == "seed-v4",
        kvm_lockless_aging=kvm == "lockless",
        kvm_tdp_atomic_aging=kvm in ("seed-v4", "lockless"),
        kvm_cmpxchg_retry=kvm == "seed-v4",
        kvm_fast_only_tdp_answers=walk == "fast-only",
        page_cluster_max=31 if cfg.page_cluster_capped else None,
    )
