"""State change: the caps behind /sys/kernel/mm/lru_gen/enabled.

Kernel: mm/vmscan.c: lru_gen_change_state(), enabled_store(); v4 2/7.

`LruGenCaps` holds the static keys (`lru_gen_caps[]`) and the predicates the
rest of the model asks: `should_walk_mmu`, `should_clear_pmd_young`,
`should_walk_secondary_mmu`. Code branches on these, never on preset names.
"""

from __future__ import annotations

from dataclasses import dataclass

from mglru.lru_gen.helpers import (
    LRU_GEN_CORE,
    LRU_GEN_MM_WALK,
    LRU_GEN_NONLEAF_YOUNG,
    LRU_GEN_SECONDARY_MMU_WALK,
)
from mglru.presets import KernelConfig, rules_of

__all__ = ["LruGenCaps"]


@dataclass(slots=True)
class LruGenCaps:
    """The lru_gen static keys of one kernel."""

    cfg: KernelConfig
    keys: list[bool]

    @classmethod
    def boot(cls, cfg: KernelConfig) -> LruGenCaps:
        """Keys as at boot: everything on if CONFIG_LRU_GEN_ENABLED."""
        on = cfg.lru_gen_enabled
        return cls(cfg, [on] * cls.nr_caps_of(cfg))

    @staticmethod
    def nr_caps_of(cfg: KernelConfig) -> int:
        """NR_LRU_GEN_CAPS: 4 with the seed's cap bit 0x8, else 3."""
        return rules_of(cfg).nr_lru_gen_caps

    @property
    def nr_caps(self) -> int:
        """NR_LRU_GEN_CAPS of this kernel."""
        return len(self.keys)

    def get_cap(self, cap: int) -> bool:
        """Whether a static key is on."""
        return cap < len(self.keys) and self.keys[cap]

    def lru_gen_enabled(self) -> bool:
        """The core key (bit 0x1)."""
        return self.get_cap(LRU_GEN_CORE)

    def should_walk_mmu(self) -> bool:
        """arch_has_hw_pte_young() && cap MM_WALK (mm/vmscan.c: enabled_store())."""
        return self.cfg.hw_pte_young and self.get_cap(LRU_GEN_MM_WALK)

    def should_clear_pmd_young(self) -> bool:
        """arch_has_hw_nonleaf_pmd_young() && cap NONLEAF_YOUNG (mm/vmscan.c: enabled_store())."""
        return self.cfg.hw_nonleaf_pmd_young and self.get_cap(LRU_GEN_NONLEAF_YOUNG)

    def should_walk_secondary_mmu(self) -> bool:
        """CONFIG_LRU_GEN_WALKS_SECONDARY_MMU && cap 0x8 (v4 2/7)."""
        return (rules_of(self.cfg).secondary_walk_gated and self.cfg.walks_secondary_mmu
                and self.get_cap(LRU_GEN_SECONDARY_MMU_WALK))

    def enabled_mask(self) -> int:
        """The caps value enabled_show() prints: only what the hardware/Kconfig has."""
        caps = 0
        if self.lru_gen_enabled():
            caps |= 1 << LRU_GEN_CORE
        if self.should_walk_mmu():
            caps |= 1 << LRU_GEN_MM_WALK
        if self.should_clear_pmd_young():
            caps |= 1 << LRU_GEN_NONLEAF_YOUNG
        if self.should_walk_secondary_mmu():
            caps |= 1 << LRU_GEN_SECONDARY_MMU_WALK
        return caps
