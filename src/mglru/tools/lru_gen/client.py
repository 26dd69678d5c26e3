"""Reading lru_gen and driving aging and eviction through it.

Upstream: tools/testing/selftests/cgroup/lib/lru_gen_util.c (v6.16); v4 7/7.

Everything goes through the `Kernel` protocol: read the file, parse it, write
commands. Aging is lru_gen_util's `lru_gen_do_aging`: read the memcg's stats,
then for each node listed write `+ <memcg_id> <node> <max listed seq> 1 1`
(swappiness 1, force_scan 1) in its own write, then read the stats again. Any
failed write is an error (`CommandError`, which keeps the errno), as the C
helper asserts.

Eviction writes `- <memcg_id> <node> <seq> [swappiness [nr_to_reclaim]]`,
which evicts the generations up to `seq`; the kernel rejects `seq + 2 >
max_seq` with EINVAL (the two youngest generations are not evictable).
"""

from __future__ import annotations

import errno

from mglru.abi.features import explain_os_error
from mglru.abi.kernel import LRU_GEN, LRU_GEN_FULL, Kernel
from mglru.tools.lru_gen.parse import parse_lru_gen
from mglru.tools.lru_gen.stats import LruGenStats, MemcgStats

__all__ = ["CommandError", "read_lru_gen", "read_memcg_stats", "aging_command",
           "eviction_command", "aging_commands", "run_command", "age_memcg",
           "lru_gen_do_aging", "evict_memcg"]

Swappiness = int | str

_AGING_HINTS = {
    errno.EINVAL: "seq above max_seq, or no such memcg or node",
    errno.EEXIST: "no generation was created: max_seq moved on meanwhile (v6.14+)",
    errno.ERANGE: "already MAX_NR_GENS generations and force_scan off (before v6.14)",
}


class CommandError(OSError):
    """A debugfs command the kernel rejected; `errno` is the kernel's.

    Attributes:
        command: the command text written (without the newline).
        hint: what the errno usually means for this command, or "".
    """

    command: str = ""
    hint: str = ""

    def __str__(self) -> str:
        name = errno.errorcode.get(self.errno or 0, str(self.errno))
        text = f"{self.filename}: command {self.command!r} failed: {self.strerror} ({name})"
        return f"{text}; {self.hint}" if self.hint else text


def _read(kernel: Kernel, path: str) -> str:
    try:
        return kernel.read(path)
    except OSError as e:
        found = explain_os_error(kernel, path, e)
        if found is not None:
            raise found from None
        raise


def read_lru_gen(kernel: Kernel, full: bool = False) -> LruGenStats:
    """Read and parse lru_gen (or lru_gen_full).

    Raises:
        FeatureUnavailable: no lru_gen, debugfs not mounted or not accessible.
        LruGenParseError: the kernel printed something unexpected.
    """
    path = LRU_GEN_FULL if full else LRU_GEN
    return parse_lru_gen(_read(kernel, path), source=path)


def read_memcg_stats(kernel: Kernel, memcg: str | int, full: bool = False) -> MemcgStats:
    """The stats of one memcg, by id, path ("/a") or lru_gen_util name ("a").

    Raises:
        MemcgNotFound: not listed (lru_gen_util: "Couldn't find memcg").
        FeatureUnavailable, LruGenParseError: see `read_lru_gen`.
    """
    return read_lru_gen(kernel, full).find(memcg)


def _swappiness(value: Swappiness) -> str:
    if value == "max" or (isinstance(value, int) and value >= 0):
        return str(value)
    raise ValueError(f"swappiness must be a non-negative integer or 'max', got {value!r}")


def aging_command(memcg_id: int, nid: int, seq: int, swappiness: Swappiness = 1,
                  force_scan: bool = True) -> str:
    """`+ memcg_id nid seq swappiness force_scan\\n` (lru_gen_util's format)."""
    return f"+ {memcg_id} {nid} {seq} {_swappiness(swappiness)} {int(force_scan)}\n"


def eviction_command(memcg_id: int, nid: int, seq: int, swappiness: Swappiness | None = None,
                     nr_to_reclaim: int | None = None) -> str:
    """`- memcg_id nid seq [swappiness [nr_to_reclaim]]\\n`.

    Raises:
        ValueError: `nr_to_reclaim` without `swappiness` (the grammar is positional).
    """
    parts = ["-", str(memcg_id), str(nid), str(seq)]
    if swappiness is not None:
        parts.append(_swappiness(swappiness))
    if nr_to_reclaim is not None:
        if swappiness is None:
            raise ValueError("nr_to_reclaim needs swappiness too (the fields are positional)")
        if nr_to_reclaim < 0:
            raise ValueError(f"nr_to_reclaim must be non-negative, got {nr_to_reclaim}")
        parts.append(str(nr_to_reclaim))
    return " ".join(parts) + "\n"


def aging_commands(stats: MemcgStats, swappiness: Swappiness = 1,
                   force_scan: bool = True) -> list[str]:
    """One aging command per node, at the largest seq listed for it (0 if none)."""
    return [aging_command(stats.memcg_id, n.nid, n.max_seq or 0, swappiness, force_scan)
            for n in stats.nodes]


def run_command(kernel: Kernel, command: str, hint: str = "") -> int:
    """Write one command to lru_gen; returns the bytes accepted.

    Args:
        kernel: any backend.
        command: the command text.
        hint: added to the error message if the kernel rejects the command;
            by default the usual meaning of the errno for aging commands.

    Raises:
        CommandError: the kernel rejected it (errno kept).
        FeatureUnavailable: lru_gen cannot be written (missing, not root...).
    """
    try:
        return kernel.write(LRU_GEN, command)
    except OSError as e:
        found = explain_os_error(kernel, LRU_GEN, e)
        if found is not None:
            raise found from None
        err = CommandError(e.errno, e.strerror, LRU_GEN)
        err.command = command.strip()
        err.hint = hint or (_AGING_HINTS.get(e.errno, "") if command.startswith("+") else "")
        raise err from None


def age_memcg(kernel: Kernel, memcg: str | int, swappiness: Swappiness = 1,
              force_scan: bool = True) -> tuple[list[str], MemcgStats]:
    """`lru_gen_do_aging`, also returning the commands written.

    Raises:
        MemcgNotFound, CommandError, FeatureUnavailable, LruGenParseError.
    """
    before = read_memcg_stats(kernel, memcg)
    commands = aging_commands(before, swappiness, force_scan)
    for command in commands:
        run_command(kernel, command)
    return commands, read_memcg_stats(kernel, memcg)


def lru_gen_do_aging(kernel: Kernel, memcg: str | int, swappiness: Swappiness = 1,
                     force_scan: bool = True) -> MemcgStats:
    """Age every node of a memcg once and return its new stats: lru_gen_do_aging().

    Raises:
        MemcgNotFound, CommandError, FeatureUnavailable, LruGenParseError.
    """
    return age_memcg(kernel, memcg, swappiness, force_scan)[1]


def evict_memcg(kernel: Kernel, memcg: str | int, seq: int | None = None, nid: int | None = None,
                swappiness: Swappiness | None = None,
                nr_to_reclaim: int | None = None) -> tuple[list[str], MemcgStats]:
    """Evict generations up to `seq` (default: each node's oldest listed) on one or all nodes.

    Returns:
        The commands written and the memcg's stats afterwards.

    Raises:
        KeyError: `nid` is not listed for the memcg.
        MemcgNotFound, CommandError, FeatureUnavailable, LruGenParseError.
    """
    stats = read_memcg_stats(kernel, memcg)
    nodes = [stats.node(nid)] if nid is not None else list(stats.nodes)
    commands = []
    for node in nodes:
        target = seq if seq is not None else node.min_seq
        if target is None:
            continue  # nothing listed on this node
        command = eviction_command(stats.memcg_id, node.nid, target, swappiness, nr_to_reclaim)
        max_seq = node.max_seq or 0
        hint = (f"eviction needs seq <= max_seq - 2 = {max_seq - 2} on node {node.nid}"
                if target + 2 > max_seq else "")
        run_command(kernel, command, hint)
        commands.append(command)
    return commands, read_memcg_stats(kernel, memcg)
