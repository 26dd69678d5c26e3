"""Benchmarks of the simulated kernel: one home for the CLI and benchmarks/.

Scale benchmarks (`mglru bench ...`), each size in a fresh interpreter:
`aging` (one force_scan aging pass), `reclaim` (memory.reclaim of a cold part),
`vm` (memory populated by a guest), `runner` (fresh-interpreter runs, records).

The `-p` scenario of access_tracking_perf_test (seed v4 7/7) on the timing
engine (`mglru.timing`), which knows no benchmark:

    fault         the VM's shared locks and lines, one guest page fault
    vcpu          the vCPU fault loop and its progress
    load          the memory-system load of the faulting vCPUs
    chunks        a walk chunk's notifier calls as timing steps (the call cost formula)
    aging_thread  the aging thread's passes and the driver that feeds it chunks
    walk_cursor   where the regions are, which PTE tables the walk takes next
    lru_gen_bench run_lru_gen_benchmark: the scenario on a SimKernel
    seed          the cover letter's configurations, rows and seed_benchmark
    calibrate     fitting costs.toml on rows 1-16
    seed_table    the table's records (`mglru reproduce seed-table`)
"""
