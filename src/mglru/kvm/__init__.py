"""KVM: VMs whose secondary MMUs take part in MGLRU aging. virt/kvm; v4 3-6/7.

    from mglru.kvm import create_vm
    vm = create_vm(k, p, arch="x86", nr_vcpus=1, mem_bytes=1 << 30)
    vm.vcpu_access(0, 0, 1 << 30, write=True)

Modules: `kvm_main` (the VM, memslot walk, notifier subscription), `memslot`,
`vcpu` (guest accesses, guest TLB, faults through the host), `mmu` (the
`SecondaryMmu` protocol and shared base), one module per arch model
(`x86_tdp`, `x86_shadow`, `arm64`, `generic`), `spte`, `accounting`.
"""

from mglru.kvm.accounting import AgingEvent, AgingLog
from mglru.kvm.kvm_main import Kvm, create_vm
from mglru.kvm.mmu import RACE_TOUCH, RACE_ZAP, SecondaryMmu
from mglru.kvm.vcpu import Vcpu

__all__ = ["create_vm", "Kvm", "Vcpu", "SecondaryMmu", "AgingEvent", "AgingLog", "RACE_TOUCH",
           "RACE_ZAP"]
