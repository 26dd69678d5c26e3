"""Cache traces: libCacheSim's oracleGeneral binary format and CSV, mapped onto pages.

oracleGeneral (libCacheSim, traceReader/customizedReader/oracle/oracleGeneralBin.h)
is a sequence of little-endian records of 24 bytes:
``uint32 clock_time, uint64 obj_id, uint32 obj_size, int64 next_access_vtime``
(clock time in seconds; next_access_vtime is the index of the object's next
request, -1 if none). The CSV form has a header line naming columns among
``time, obj_id (or id, object), size, op`` (any order) and one request per line.

A trace becomes a page stream by giving each distinct object its own
contiguous pages (`ceil(size / PAGE_SIZE)`, at least one) in order of first
appearance; a request touches every page of its object.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mglru.mm.page import PAGE_SIZE
from mglru.workload._trace_kernel import dense_objects, expand_pages, next_uses

__all__ = ["ORACLE_GENERAL", "Trace", "TraceError", "read_oracle_general", "write_oracle_general",
           "read_csv", "read_trace", "to_pages", "page_map"]

#: one oracleGeneral request
ORACLE_GENERAL = np.dtype([("time", "<u4"), ("obj_id", "<u8"), ("size", "<u4"),
                           ("next_vtime", "<i8")])
_WRITE_OPS = {"set", "write", "add", "replace", "cas", "append", "prepend", "update", "put"}


class TraceError(ValueError):
    """A malformed trace file; the message names the file and the byte offset."""


@dataclass
class Trace:
    """Requests: time (s), object id, object size (bytes), write flag."""

    time: npt.NDArray[np.int64]
    obj_id: npt.NDArray[np.uint64]
    size: npt.NDArray[np.int64]
    write: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.obj_id)


def read_oracle_general(path: str) -> Trace:
    """Read an oracleGeneral file.

    Raises:
        TraceError: empty, a truncated last record, or time going backwards.
    """
    # mapped rather than read: the fields are copied out once, and a fresh buffer of the
    # file's size would cost a page fault per page (or a huge page's compaction) first
    nbytes = os.path.getsize(path)
    raw = np.memmap(path, dtype=np.uint8, mode="r") if nbytes else np.zeros(0, np.uint8)
    if len(raw) == 0:
        raise TraceError(f"{path}: empty trace (byte offset 0)")
    if len(raw) % ORACLE_GENERAL.itemsize:
        off = len(raw) - len(raw) % ORACLE_GENERAL.itemsize
        raise TraceError(f"{path}: truncated record at byte offset {off} "
                         f"({len(raw) - off} of {ORACLE_GENERAL.itemsize} bytes)")
    rec = raw.view(ORACLE_GENERAL)
    t = np.array(rec["time"], np.int64)  # np.array: a plain array, not a memmap
    back = np.flatnonzero(t[1:] < t[:-1])
    if len(back):
        i = int(back[0]) + 1
        raise TraceError(f"{path}: time goes backwards at byte offset "
                         f"{i * ORACLE_GENERAL.itemsize} (request {i})")
    return Trace(t, np.array(rec["obj_id"], np.uint64), np.array(rec["size"], np.int64),
                 np.zeros(len(rec), bool))


def write_oracle_general(path: str, time: npt.ArrayLike, obj_id: npt.ArrayLike,
                         size: npt.ArrayLike) -> None:
    """Write requests as oracleGeneral, computing next_access_vtime (-1: never again)."""
    ids = np.asarray(obj_id, np.uint64)
    n = len(ids)
    sizes = np.asarray(size, np.int64)
    if sizes.shape != ids.shape:
        raise ValueError(f"one size per request: {ids.shape} ids, {sizes.shape} sizes")
    obj, size_of = dense_objects(ids, sizes)  # (the sizes it returns are not needed here)
    nxt = next_uses(obj, len(size_of))
    rec = np.empty(n, ORACLE_GENERAL)
    rec["time"], rec["obj_id"], rec["size"], rec["next_vtime"] = time, ids, sizes, nxt
    rec.tofile(path)


def read_csv(path: str) -> Trace:
    """Read a CSV trace with a header (time, obj_id, size, op).

    Raises:
        TraceError: missing columns or a bad field, naming the line's byte offset.
    """
    with open(path, "rb") as f:
        data = f.read()
    lines = data.splitlines(keepends=True)
    if not lines:
        raise TraceError(f"{path}: empty trace (byte offset 0)")
    header = [h.strip().lower() for h in lines[0].decode("utf-8", "replace").split(",")]
    alias = {"id": "obj_id", "object": "obj_id", "obj": "obj_id", "timestamp": "time",
             "obj_size": "size", "operation": "op"}
    header = [alias.get(h, h) for h in header]
    if "obj_id" not in header:
        raise TraceError(f"{path}: the header (byte offset 0) needs an obj_id column, "
                         f"got {','.join(header)}")
    col = {name: header.index(name) for name in ("time", "obj_id", "size", "op") if name in header}
    n = len(lines) - 1
    t = np.zeros(n, np.int64)
    ids = np.zeros(n, np.uint64)
    size = np.full(n, PAGE_SIZE, np.int64)
    write = np.zeros(n, bool)
    off = len(lines[0])
    kept = 0
    for line in lines[1:]:
        text = line.decode("utf-8", "replace").strip()
        if text:
            fields = next(csv.reader(io.StringIO(text)))
            try:
                ids[kept] = int(fields[col["obj_id"]])
                if "time" in col:
                    t[kept] = int(float(fields[col["time"]]))
                if "size" in col:
                    size[kept] = int(fields[col["size"]])
                if "op" in col:
                    write[kept] = fields[col["op"]].strip().lower() in _WRITE_OPS
            except (ValueError, IndexError, OverflowError):
                raise TraceError(f"{path}: bad request at byte offset {off}: "
                                 f"{text[:60]!r}") from None
            if size[kept] < 0 or (kept and t[kept] < t[kept - 1]):
                raise TraceError(f"{path}: bad request at byte offset {off} "
                                 f"(negative size or time going backwards): {text[:60]!r}")
            kept += 1
        off += len(line)
    if not kept:
        raise TraceError(f"{path}: no requests after the header (byte offset {off})")
    return Trace(t[:kept], ids[:kept], size[:kept], write[:kept])


def read_trace(path: str, fmt: str | None = None) -> Trace:
    """Read a trace by format ("oracleGeneral" or "csv"; default by file suffix)."""
    if fmt is None:
        fmt = "csv" if path.lower().endswith((".csv", ".txt")) else "oracleGeneral"
    if fmt.lower() in {"oraclegeneral", "oracle_general", "oracle"}:
        return read_oracle_general(path)
    if fmt.lower() == "csv":
        return read_csv(path)
    raise ValueError(f"unknown trace format {fmt!r}; valid: oracleGeneral, csv")


def to_pages(trace: Trace, *, unit: bool = False) -> tuple[npt.NDArray[np.int64],
                                                           npt.NDArray[np.int64], int]:
    """Map requests onto pages.

    Args:
        trace: the requests.
        unit: every object is one page, whatever its size.

    Returns:
        (pages, request index of each page access, pages spanned by all objects).
    """
    pages, req, span = page_map(trace, unit=unit)
    return pages, np.arange(len(pages), dtype=np.int64) if req is None else req, span


def page_map(trace: Trace, *, unit: bool = False) -> tuple[npt.NDArray[np.int64],
                                                           npt.NDArray[np.int64] | None, int]:
    """`to_pages`, with None for the request indices when each request is one page
    access (they would be 0, 1, 2, ...: a caller can index the trace directly)."""
    obj, size_of = dense_objects(trace.obj_id, trace.size)
    u = len(size_of)
    npages = np.maximum(1, -(-size_of // PAGE_SIZE))
    span = int(npages.sum())
    if unit or span == u:  # one page per object: its pages are the objects' numbers
        return obj, None, u
    start = np.concatenate(([0], np.cumsum(npages)[:-1]))
    pages, req = expand_pages(obj, start, npages)
    return pages, req, span
