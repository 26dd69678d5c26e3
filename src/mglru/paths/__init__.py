"""The kernel's paths that join the machine (`mm`) and the MGLRU policy (`lru_gen`).

A task's page fault charges its memcg, reclaims when the charge would go over
`memory.max` and adds new folios to the LRU (mm/memory.c, mm/memcontrol.c,
mm/swap.c); exit unmaps and frees (mm/mmap.c: exit_mmap()); the cgroup files
write limits, run `memory.reclaim` and reparent an rmdir'ed memcg's folios
(mm/memcontrol.c). They call down into `lru_gen` and `mm`; KVM and the kernel
facade call them.
"""
