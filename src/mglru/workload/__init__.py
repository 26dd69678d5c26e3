"""Workloads: vectorised page-access streams of tasks and VMs, generators and traces.

This layer sits above the kernel facade, beside the tools: a stream is applied
by compiled loops that do the hardware's part of each access (accessed and
dirty bits), and every access that needs the kernel goes through the same
fault path as `Process.access`, one page at a time, so the result is the
per-page result.

    from mglru.workload import Engine, host_stream, generators
    pages = generators.zipf(n_pages, n_accesses, alpha=0.9, seed=1)
    Engine(k).run([host_stream(p, addr, pages, writes=True, rate=50e6)])
"""

from mglru.workload.engine import Engine
from mglru.workload.stream import Stream, guest_stream, host_stream, stream_times

__all__ = ["Engine", "Stream", "host_stream", "guest_stream", "stream_times"]
