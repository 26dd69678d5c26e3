"""Helpers for the KVM tests: a small kernel with one VM in memcg /vm."""

from __future__ import annotations

from dataclasses import dataclass

from mglru import SimKernel
from mglru.kvm import Kvm
from mglru.lru_gen.lruvec import Lruvec
from mglru.mm.process import Process

LRU_GEN = "/sys/kernel/debug/lru_gen"
ENABLED = "/sys/kernel/mm/lru_gen/enabled"
MIB = 1 << 20

#: (arch, create_vm keywords) of the four arch models
ARCH_MODELS = {
    "x86_tdp": ("x86", {}),
    "x86_shadow": ("x86", {"tdp_mmu": False}),
    "arm64": ("arm64", {}),
    "generic": ("riscv", {}),
}


@dataclass
class Setup:
    """A kernel, the VMM process, its VM and the memcg's lruvec."""

    k: SimKernel
    p: Process
    vm: Kvm
    lv: Lruvec

    def age(self) -> None:
        """One force_scan aging pass of /vm (the selftest's `+ id node max_gen 1 1`)."""
        self.k.write(LRU_GEN, f"+ {self.lv.memcg.id} 0 {self.lv.max_seq} 1 1")

    def gens(self) -> list[int]:
        """Anon pages per seq from max_seq - 3 to max_seq."""
        top = self.lv.max_seq
        return [self.lv.nr_pages_of_seq(s, 0) for s in range(top - 3, top + 1)]


def make_vm(preset: str = "seed-v4", model: str = "x86_tdp", mem: int = 4 * MIB,
            debug: bool = True, kernel_kw: dict | None = None, **vm_kw) -> Setup:
    """A 1 GiB-node kernel with one VM of `mem` bytes in memcg /vm (TLB off unless asked)."""
    k = SimKernel(preset, node_bytes=(1 << 30,), debug=debug, **(kernel_kw or {}))
    k.mkdir("/sys/fs/cgroup/vm")
    p = k.spawn(memcg="/vm")
    arch, kw = ARCH_MODELS[model]
    vm_kw.setdefault("tlb_entries", 0)
    vm = k.create_vm(p, arch=arch, mem_bytes=mem, **(kw | vm_kw))
    return Setup(k, p, vm, k.lruvec("/vm"))
