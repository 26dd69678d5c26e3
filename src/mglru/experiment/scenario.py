"""One experiment point: build a kernel, VMs and tasks, run the workload, return a row.

Kernel: the preset's (mglru.presets); KVM per arch (mglru.kvm); the agents
drive it through /sys/kernel/debug/lru_gen and memory.reclaim
(mglru.experiment.agents).

`run_point(point)` takes a flat dict (keys below; missing ones take
`DEFAULTS`, unknown ones are a ValueError naming them) and returns one flat
row: every point key, the metrics of `mglru.experiment.metrics`, the costs of
`mglru.experiment.cost`, and sim_ms, wall_s, accesses. The same point gives
the same row except wall_s: every random draw is seeded from `seed`.

Set-up. Memcgs below /exp: the VM's VMM process alone in /exp/vm, host tasks
one per sibling memcg /exp/host<i>. The VM's memory is a 4 KiB-page anon
memslot at gpa 0 that the guest touches once at time 0 (a booted guest that
has used all its memory: one vectorised fault pass, not a page at a time);
host tasks touch their whole mapping the same way. Then each vCPU and task
runs an access stream for `duration_ms` at `rate` accesses per second, the
Engine interleaving them (`quantum_ms`); every `agent_interval_ms` the agent
acts and the Recorder samples. Before the agent, each VMM mm is marked used
(lru_gen_use_mm(), as switching its vCPU threads in does; host tasks' streams
mark theirs as they run), so a walk without force_scan does not skip it.

Point keys:
    study, size, run_id: passed through.
    seed: every generator's seed derives from it.
    preset: a name of mglru.presets.PRESETS.
    arch: "x86-tdp" (x86, TDP MMU), "x86-shadow" (x86, shadow MMU),
        "arm64", "generic" (riscv: mmu_lock is a spinlock). arm64 and generic
        also set the host's arch without non-leaf PMD accessed bits.
    workload: "zipf" | "hotcold" | "kv" | "uniform" | "seq" over the guest's
        (and the host tasks') pages; alpha for zipf/kv; hot_fraction and
        phases for hotcold; clustered: the hot pages are contiguous in the
        guest's (or task's) virtual pages (zipf: rank r on page r; hotcold: one
        run per phase), so `locality` decides how contiguous they are in guest
        frames; False scatters them already (locality then changes nothing).
    locality: guest_layout run length (guest-virtual -> guest-physical):
        1 scatters every page, >= the guest's pages is the identity.
    guest_mib, vcpus, tlb_entries: the VM (guest_mib 0: no VM).
    host_mib, host_tasks: host tasks' memory in total (0: none) and count.
    memory_mib, pressure: "memcg": memory.max of /exp (0: no limit);
        "node": the node's usable size, above its reserved low 4 MiB, rounded
        up to 2 MiB (kswapd and direct reclaim; 0: roomy).
    duration_ms, rate, quantum_ms: simulated run time, accesses per second per
        vCPU or task, Engine scheduling quantum.
    agent: "age-threshold" | "refault-feedback" | "none"; agent_interval_ms,
        agent_threshold_ms, agent_step_mib, agent_target_refaults_per_s,
        agent_swappiness, agent_evict ("debugfs" | "memory.reclaim"),
        agent_force_scan (True: aging walks every PTE table, Bloom filters
        ignored, as lru_gen_util; False: only the tables the filters kept).
    cap_0x8: whether lru_gen/enabled keeps cap 0x8 (walk secondary MMUs) where
        the preset has it (v4 2/7); ignored by presets without the cap.
    warm_ms: T of warm_reclaimed; wss_ms: the working-set estimate's idle bound
        (0: warm_ms).

Extra row keys: per side ("guest", "host") refaults, rss and memory saved at
the end (guest_refaults, host_refaults, guest_rss_mib_end, host_rss_mib_end,
guest_saved_mib_end, host_saved_mib_end), host_major_faults,
mmu_lock_blocking_hold_ms (hold time that blocks vCPU faults; times the vCPU
count, the most the vCPUs could really stall), agent_errors (transient errnos the agent
survived), evicted_seen (pages the eviction hook classified).

Future optimizations:
1. share the booted kernel between points that differ only in the agent.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from mglru.experiment.agents import make_agent
from mglru.experiment.columns import EXTRAS, METRICS
from mglru.experiment.cost import price, snapshot
from mglru.experiment.metrics import Recorder
from mglru.kernel import SimKernel
from mglru.mm.page import NR_RESERVED_PFNS, PAGE_SHIFT, PAGE_SIZE, PTE_PRESENT, PTE_SPECIAL
from mglru.timing.costs import load_costs
from mglru.workload import Engine, generators as gen, guest_stream, host_stream

__all__ = ["run_point", "check_point", "DEFAULTS", "ARCHS", "ROW_KEYS"]

#: every key a point may have, with its default
DEFAULTS: dict[str, Any] = {
    "study": "", "size": "", "seed": 0, "run_id": "",
    "preset": "v6.12", "arch": "x86-tdp",
    "workload": "zipf", "alpha": 0.9, "hot_fraction": 0.1, "phases": 2, "clustered": True,
    "locality": 512,
    "guest_mib": 8, "vcpus": 1, "tlb_entries": 64,
    "host_mib": 0, "host_tasks": 1,
    "memory_mib": 0, "pressure": "memcg",
    "duration_ms": 2000, "rate": 20000, "quantum_ms": 1.0,
    "agent": "age-threshold", "agent_interval_ms": 100, "agent_threshold_ms": 250,
    "agent_step_mib": 1, "agent_target_refaults_per_s": 100, "agent_swappiness": 100,
    "agent_evict": "debugfs", "agent_force_scan": True,
    "cap_0x8": True, "warm_ms": 200, "wss_ms": 150,
}

#: arch key -> (KernelConfig.arch, create_vm's tdp_mmu, host sets non-leaf PMD young)
ARCHS = {
    "x86-tdp": ("x86", True, True),
    "x86-shadow": ("x86", False, True),
    "arm64": ("arm64", True, False),
    "generic": ("riscv", True, False),
}

#: result keys besides the point's, in row order
ROW_KEYS = METRICS + EXTRAS

_WORKLOADS = ("zipf", "hotcold", "kv", "uniform", "seq")
_MIB = 1 << 20


def check_point(point: dict[str, Any]) -> dict[str, Any]:
    """The point with defaults filled in; ValueError naming the first bad key or value.

    Sweeps call it on every point before running any, so a typo in a spec fails at once.
    """
    unknown = sorted(set(point) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown point key(s) {', '.join(unknown)}; valid keys: "
                         f"{', '.join(DEFAULTS)}")
    p = {**DEFAULTS, **point}
    if p["arch"] not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}; got {p['arch']!r}")
    if p["workload"] not in _WORKLOADS:
        raise ValueError(f"workload must be one of {', '.join(_WORKLOADS)}; "
                         f"got {p['workload']!r}")
    if p["pressure"] not in ("memcg", "node"):
        raise ValueError(f"pressure must be 'memcg' or 'node'; got {p['pressure']!r}")
    if p["guest_mib"] <= 0 and p["host_mib"] <= 0:
        raise ValueError("need guest_mib > 0 or host_mib > 0: nothing would run")
    return p


def _pages(p: dict[str, Any], n_pages: int, n: int, seed: int):
    """(pages, writes) of the point's workload over `n_pages` pages."""
    w = p["workload"]
    if w == "zipf":
        return gen.zipf(n_pages, n, alpha=p["alpha"], seed=seed, clustered=p["clustered"]), False
    if w == "hotcold":
        return gen.hot_cold(n_pages, n, hot_fraction=p["hot_fraction"], phases=p["phases"],
                            seed=seed, clustered=p["clustered"]), False
    if w == "kv":
        return gen.key_value(n_pages, n, alpha=p["alpha"], seed=seed)
    if w == "uniform":
        return gen.uniform(n_pages, n, seed=seed), False
    return gen.sequential(n_pages, n, seed=seed), False


def _boot(p: dict[str, Any]) -> SimKernel:
    arch, _tdp, nonleaf = ARCHS[p["arch"]]
    need = (p["guest_mib"] + p["host_mib"]) * _MIB
    if p["pressure"] == "node" and p["memory_mib"] > 0:
        node = p["memory_mib"] * _MIB + NR_RESERVED_PFNS * PAGE_SIZE
    else:
        node = need + 64 * _MIB
    node = -(-node // (2 * _MIB)) * (2 * _MIB)
    k = SimKernel(p["preset"], seed=p["seed"], node_bytes=(node,), arch=arch,
                  hw_nonleaf_pmd_young=nonleaf)
    if k.rules.nr_lru_gen_caps == 4:  # the seed's cap 0x8 (v4 2/7)
        caps = int(k.read("/sys/kernel/mm/lru_gen/enabled"), 16)
        caps = caps | 0x8 if p["cap_0x8"] else caps & ~0x8
        k.write("/sys/kernel/mm/lru_gen/enabled", f"0x{caps:04x}")
    k.mkdir("/sys/fs/cgroup/exp")
    if p["pressure"] == "memcg" and p["memory_mib"] > 0:
        k.write("/sys/fs/cgroup/exp/memory.max", str(p["memory_mib"] * _MIB))
    return k


def _touch_task(k: SimKernel, eng: Engine, task, addr: int, npages: int) -> np.ndarray:
    """The task writes its whole mapping once; returns the vpns, stamps their pfns."""
    task.access(addr, npages * PAGE_SIZE, write=True)
    vpns = (addr >> PAGE_SHIFT) + np.arange(npages, dtype=np.int64)
    vma = task.mm.find_vma(addr)
    idx = vma.pte_index(vpns)
    pt = task.mm.pt
    present = (pt.flat_flags()[idx] & (PTE_PRESENT | PTE_SPECIAL)) == PTE_PRESENT
    eng.last_access_ms[pt.flat_pfn()[idx[present]].astype(np.int64)] = k.clock_ns // 1_000_000 + 1
    return vpns


def _sig(x: Any) -> Any:
    """Round floats to 6 significant digits (JSON rows stay short and stable)."""
    if isinstance(x, float):
        return float(f"{x:.6g}")
    return x


def run_point(point: dict[str, Any]) -> dict[str, Any]:
    """Run one point and return its flat result row (see the module docstring).

    Raises:
        ValueError: unknown or bad point keys, unknown preset or agent.
    """
    wall0 = time.perf_counter()
    p = check_point(point)
    seed = int(p["seed"])
    k = _boot(p)
    eng = Engine(k)
    rec = Recorder(k, eng, warm_ms=p["warm_ms"], wss_ms=p["wss_ms"] or None)
    n_acc = max(1, int(p["rate"] * p["duration_ms"] / 1000))
    streams = []
    vms = []
    memcgs = []
    if p["guest_mib"] > 0:
        _arch, tdp, _nl = ARCHS[p["arch"]]
        k.mkdir("/sys/fs/cgroup/exp/vm")
        vmm = k.spawn(memcg="/exp/vm")
        n = p["guest_mib"] * _MIB // PAGE_SIZE
        vm = k.create_vm(vmm, arch=ARCHS[p["arch"]][0], tdp_mmu=tdp, nr_vcpus=p["vcpus"],
                         mem_bytes=n * PAGE_SIZE, tlb_entries=p["tlb_entries"],
                         log_calls=False)  # the costs read sums only: memory stays bounded
        vm.vcpu_access(0, 0, n * PAGE_SIZE, write=True)
        layout = gen.guest_layout(n, run=p["locality"], seed=seed)
        for v in range(p["vcpus"]):
            pages, writes = _pages(p, n, n_acc, seed * 1000 + 1 + v)
            streams.append(guest_stream(vm, v, layout[pages], writes, rate=p["rate"],
                                        start_ns=k.clock_ns))
        rec.watch_vm(vm, "/exp/vm", touched_ns=k.clock_ns)
        vms.append(vm)
        memcgs.append("/exp/vm")
    if p["host_mib"] > 0:
        per = max(1, p["host_mib"] * _MIB // PAGE_SIZE // p["host_tasks"])
        for i in range(p["host_tasks"]):
            path = f"/exp/host{i}"
            k.mkdir(f"/sys/fs/cgroup{path}")
            task = k.spawn(memcg=path)
            addr = task.mmap(per * PAGE_SIZE)
            vpns = _touch_task(k, eng, task, addr, per)
            pages, writes = _pages(p, per, n_acc, seed * 1000 + 501 + i)
            s = host_stream(task, addr, pages, writes, rate=p["rate"], start_ns=k.clock_ns)
            streams.append(s)
            rec.watch_tasks(path, [s], touched={id(task): vpns})
            memcgs.append(path)
    params = {"interval_ms": p["agent_interval_ms"]}
    if p["agent"] == "age-threshold":
        params.update(threshold_ms=p["agent_threshold_ms"], swappiness=p["agent_swappiness"],
                      evict=p["agent_evict"], force_scan=p["agent_force_scan"])
    elif p["agent"] == "refault-feedback":
        params.update(step_mib=p["agent_step_mib"],
                      target_refaults_per_s=p["agent_target_refaults_per_s"])
    agent = make_agent(p["agent"], memcgs, **params)
    costs = load_costs()
    before = snapshot(k, vms, costs)
    rec.start()
    t0 = k.clock_ns

    def callback(kk: SimKernel, now_ns: int) -> None:
        for vm in vms:  # its vCPU threads were switched in meanwhile (lru_gen_use_mm)
            vm.process.mm.use()
        agent(kk, now_ns)
        rec.sample(now_ns)

    eng.run(streams, quantum_ms=p["quantum_ms"], every_ms=p["agent_interval_ms"],
            callback=callback)
    metrics = rec.finish(k.clock_ns)
    delta = snapshot(k, vms, costs).delta(before)
    row: dict[str, Any] = dict(p)
    groups = metrics.pop("groups")
    row.update(metrics)
    row.update(price(delta, costs))
    for side in ("guest", "host"):
        mine = [g for g in groups.values() if g["kind"] == side]
        row[f"{side}_refaults"] = sum(g["refaults"] for g in mine)
        row[f"{side}_rss_mib_end"] = sum(g["rss_mib_end"] for g in mine)
        row[f"{side}_saved_mib_end"] = sum(g["saved_mib_end"] for g in mine)
    row["host_major_faults"] = sum(g["major_faults"] for g in groups.values()
                                   if g["kind"] == "host")
    row["mmu_lock_blocking_hold_ms"] = sum(v.blocking_hold_ns for v in delta.vms) / 1e6
    row["agent_errors"] = sum(agent.errors.values())
    # what the memory cost: a design that reclaims less also refaults less, so its
    # combined cost alone flatters it; None when nothing was saved on average
    saved = row["saved_mib_mean"]
    row["cost_per_saved_mib"] = row["combined_cost_ms"] / saved if saved and saved > 0 else None
    row["sim_ms"] = (k.clock_ns - t0) / 1e6
    row["accesses"] = sum(s.pos for s in streams)
    row["wall_s"] = time.perf_counter() - wall0
    missing = [key for key in ROW_KEYS if key not in row]
    assert not missing, f"row lacks {missing}"
    return {key: _sig(v) for key, v in row.items()}
