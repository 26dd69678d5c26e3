"""Helpers for the KVM tests: a small kernel with one VM in memcg /vm."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mglru import SimKernel
from mglru.kvm import Kvm
from mglru.lru_gen.lruvec import Lruvec
from mglru.mm.process import Process
from mglru.workload import Stream, guest_stream

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


def hot_cold_streams(vm: Kvm, seed: int, n: int) -> list[Stream]:
    """One stream per vCPU of `vm`: `n` accesses, 60 % to 96 hot gfns and the rest over
    2 048, half of them writes, up to 0.3 ms apart."""
    rng = np.random.default_rng(seed)
    streams = []
    for v in range(len(vm.vcpus)):
        g = np.where(rng.random(n) < 0.6, rng.integers(0, 96, n), rng.integers(0, 2048, n))
        streams.append(guest_stream(vm, v, g, rng.random(n) < 0.5,
                                    t_ns=np.cumsum(rng.integers(0, 300_000, n))))
    return streams
