"""`mglru bench aging --vm`: memory populated by a guest. Issue "Secondary MMUs", item 4.

`populate_vm` builds what the seed's cover letter measures: one VMM process in
the benchmark memcg running an x86 TDP VM (the preset's KVM aging rules; the
CLI defaults to seed-v4) whose vCPU writes all of its memory, so every page is
faulted in through the host (host PTE young) and mapped by an accessed SPTE.
The aging pass that follows (`mglru.bench.aging.run_one`) then harvests both MMUs:
with seed-v4 and cap 0x8 on, one `clear_young` per page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.kvm import Kvm
    from mglru.mm.memcg import MemCgroup

__all__ = ["populate_vm"]


def populate_vm(k: SimKernel, memcg: MemCgroup, nbytes: int) -> Kvm:
    """A 1-vCPU x86 TDP VM in `memcg` whose guest writes `nbytes` of memory; returns the VM."""
    p = k.spawn(memcg=memcg)
    vm = k.create_vm(p, arch="x86", nr_vcpus=1, mem_bytes=nbytes)
    vm.vcpu_access(0, 0, nbytes, write=True)
    return vm
