"""Hypothesis strategies: kernel operation sequences and lru_gen write buffers.

Two families:

* `ops()` draws a sequence of user-level operations (spawn, mmap, access,
  read(2), aging through debugfs, memcg migration, mkdir/rmdir, exit, time)
  as plain tuples; indices are resolved modulo what exists when an operation
  runs (see `tests/lru_gen/test_lru_gen_properties.py`), so every sequence is
  valid and shrinks well.
* `lru_gen_writes()` draws a multi-command write to /sys/kernel/debug/lru_gen
  together with the outcome the kernel must produce, computed by
  `WriteOracle`: an independent reading of the grammar of spec §5.4 (a regex
  equivalent of the kernel's sscanf format, kstrtouint, run_cmd's checks and
  each version's `+` return codes). It never calls the model's parser.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass, field

from hypothesis import strategies as st

__all__ = ["ops", "op", "OP_KINDS", "POPULATE_KINDS", "WriteOracle", "Outcome", "lru_gen_writes",
           "WS", "kstrtouint_oracle"]

# -- operation sequences -----------------------------------------------------------------
#: operation kinds, repeated to weight the draw
OP_KINDS = ("mkdir", "rmdir", "spawn", "spawn", "mmap", "mmap", "access", "access", "access",
            "read", "age", "age", "age", "cycle", "cycle", "migrate", "exit", "tick", "enabled",
            "trim")
POPULATE_KINDS = ("mkdir", "spawn", "mmap", "mmap", "access", "access", "read")


def op(kinds: tuple[str, ...] = OP_KINDS) -> st.SearchStrategy[tuple]:
    """One operation: (kind, a, b, c, d) with small integer parameters.

    The runner decodes the parameters per kind (indices modulo what exists,
    sizes, flags); a flat shape keeps generation cheap and shrinking simple.
    """
    return st.tuples(st.sampled_from(kinds), st.integers(0, 15), st.integers(0, 15),
                     st.integers(0, 15), st.integers(0, 1023))


@st.composite
def ops(draw, max_size: int = 30) -> list[tuple]:
    """A sequence of operations: a populating prefix, then anything."""
    prefix = [("mkdir", 0, draw(st.integers(0, 15)), 0, 0),
              ("spawn", 1, draw(st.integers(0, 15)), 0, 0)]
    prefix += [draw(op(POPULATE_KINDS)) for _ in range(draw(st.integers(2, 8)))]
    return prefix + [draw(op()) for _ in range(draw(st.integers(5, max_size)))]


# -- lru_gen write buffers and their oracle ----------------------------------------------
#: the kernel's isspace() on ASCII
WS = " \t\n\v\f\r"
_WS = "[ \t\n\v\f\r]"
_NWS = "[^ \t\n\v\f\r]"
#: "%c %u %u %lu %n%u %n%lu %n" (before v6.16)
_FMT_OLD = re.compile(
    rf"(?s)(.){_WS}*([0-9]++){_WS}*([0-9]++){_WS}*([0-9]++){_WS}*"
    rf"(?:([0-9]++){_WS}*(?:([0-9]++){_WS}*)?)?")
#: "%c %u %u %lu %n%4s %n%lu %n" (v6.16)
_FMT_NEW = re.compile(
    rf"(?s)(.){_WS}*([0-9]++){_WS}*([0-9]++){_WS}*([0-9]++){_WS}*"
    rf"(?:({_NWS}{{1,4}}+){_WS}*(?:([0-9]++){_WS}*)?)?")
_KSTRTOUINT = re.compile(r"\+?(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*))\n?")
_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1


def kstrtouint_oracle(s: str) -> int | None:
    """kstrtouint(s, 0): the value, or None for -EINVAL/-ERANGE."""
    m = _KSTRTOUINT.fullmatch(s)
    if m is None:
        return None
    hexd, octd, decd = m.groups()
    value = int(hexd, 16) if hexd is not None else int(octd, 8) if octd is not None else int(decd)
    return value if value <= _U32 else None


@dataclass(frozen=True)
class Outcome:
    """What one command must do: fail with `errno`, or succeed (and maybe age a lruvec)."""

    errno: int = 0
    aged: tuple[int, int] | None = None  # (memcg id, nid) whose max_seq grows by one


@dataclass
class WriteOracle:
    """Expected results of lru_gen commands, from spec §5.4 and §8.4 alone.

    Tracks max_seq per (memcg id, nid). Assumes every lruvec has 4 generations
    of both types (true until eviction runs), so that v6.10's `+` without
    force_scan is -ERANGE.
    """

    max_seq: dict[tuple[int, int], int]
    nr_nodes: int
    swappiness_max_token: bool  # v6.16 grammar and limit 201
    aging_rc_eexist: bool  # v6.14 `+` semantics
    eviction: bool  # `-` is modelled: the generator must not emit it
    memcg_ids: frozenset[int] = field(default_factory=frozenset)

    def parse(self, piece: str) -> tuple | None:
        """sscanf of one piece (already left-stripped): the fields, or None (-EINVAL)."""
        fmt = _FMT_NEW if self.swappiness_max_token else _FMT_OLD
        m = fmt.fullmatch(piece)
        if m is None:
            return None
        cmd, memcg, nid, seq, swp, opt = m.groups()
        return (cmd, int(memcg) & _U64 & _U32, int(nid) & _U64 & _U32, int(seq) & _U64, swp,
                None if opt is None else int(opt) & _U64)

    def run(self, piece: str) -> Outcome:
        """Outcome of one command, updating the tracked state on success."""
        fields = self.parse(piece)
        if fields is None:
            return Outcome(errno.EINVAL)
        cmd, memcg_id, nid, seq, swp, opt = fields
        swappiness: int | None = None  # None = the default
        if swp is not None:
            if self.swappiness_max_token:
                value = 201 if swp == "max" else kstrtouint_oracle(swp)
                if value is None:
                    return Outcome(errno.EINVAL)
            else:
                value = int(swp) & _U64 & _U32
            if value < 1 << 31:  # run_cmd takes an int: negative means the default
                swappiness = value
        if nid >= 1 << 31 or nid >= self.nr_nodes:
            return Outcome(errno.EINVAL)
        if memcg_id >= 1 << 31 or memcg_id not in self.memcg_ids:
            return Outcome(errno.EINVAL)
        limit = 201 if self.swappiness_max_token else 200
        if swappiness is not None and swappiness > limit:
            return Outcome(errno.EINVAL)
        if cmd != "+":
            assert not (cmd == "-" and self.eviction), "the generator must not emit `-` now"
            return Outcome(errno.EINVAL)
        key = (memcg_id, nid)
        max_seq = self.max_seq[key]
        force_scan = opt is None or opt != 0
        if seq > max_seq:
            return Outcome(errno.EINVAL)
        if not self.aging_rc_eexist:
            if seq < max_seq:
                return Outcome()  # v6.10: nothing to do, success
            if not force_scan:
                return Outcome(errno.ERANGE)  # the type already has MAX_NR_GENS
        self.max_seq[key] = max_seq + 1
        return Outcome(aged=key)


# pieces built from tokens; the oracle, not the generator, decides what they mean
_GOOD = {
    "cmd": ("+",),
    "memcg": ("2", "1", "3", "01", "4294967297"),
    "nid": ("0", "1", "4294967296"),
    "seq": ("max", "max", "max-1", "0", "18446744073709551616"),
    # omitted, plain, octal/decimal ambiguity, wraps to -1 (= default) before v6.16,
    # and the v6.16-only tokens
    "swp": (None, "1", "60", "0", "200", "010", "4294967295", "201", "max", "0x10", "+1",
            "01001"),
    # all-ones when omitted; 0 and 2**64 (wraps to 0) turn force_scan off
    "opt": (None, "1", "7", "18446744073709551615", "0", "18446744073709551616"),
    "tail": ("", " ", "\t"),
}
_BAD = {
    "cmd": ("x", "1", "=", "-"),
    "memcg": ("0", "9", "65538", "x", "-2", "+2"),
    "nid": ("2", "1024", "4294967295", "0x1"),
    "seq": ("max+1", "18446744073709551615", "+3"),
    "swp": ("202", "-1", "12345", "1a", "1000"),
    "opt": ("x", "-1"),
    "tail": (" z", "z", "  #"),
    "fields": (2, 3),
}
_INNER_WS = (" ", " ", "  ", "\t", " \t", "\r", "\v")
_SEPS = (",", ";", "\n", ",,", ";\n", "\n\n", ", ", " ;", ",  ,", "\n\t\n")


@st.composite
def _structured_piece(draw, max_seq_of, bad: str | None) -> str:
    def pick(name: str):
        return draw(st.sampled_from((_BAD if name == bad else _GOOD)[name]))

    cmd, memcg, nid, seq = pick("cmd"), pick("memcg"), pick("nid"), pick("seq")
    cur = max_seq_of(memcg, nid)
    seq = {"max": str(cur), "max-1": str(cur - 1), "max+1": str(cur + 1)}.get(seq, seq)
    toks = [memcg, nid, seq]
    if bad == "fields":
        toks = toks[: pick("fields") - 1]
    else:
        swp = pick("swp")
        opt = pick("opt") if swp is not None else None
        toks += [t for t in (swp, opt) if t is not None]
    text = draw(st.sampled_from(("", " ", "\t "))) + cmd
    text += draw(st.sampled_from((" ", "", "\t")))
    text += toks[0]
    for tok in toks[1:]:
        text += draw(st.sampled_from(_INNER_WS)) + tok
    return text + pick("tail")


_RANDOM_ALPHABET = "+0123456789 \tmaxz-"


@st.composite
def lru_gen_writes(draw, oracle: WriteOracle):
    """A write buffer plus (pieces, index of the first failing piece or None, errno).

    Each piece is well formed (60%), has exactly one bad part (30%) or is random
    text (10%). `pieces` are the non-blank commands in order, left-stripped as
    the kernel sees them. The oracle is advanced over the pieces up to and
    including the first failure. A buffer without any command fails at 0 (EINVAL).
    """

    def max_seq_of(memcg: str, nid: str) -> int:
        key = (int(memcg) & 0xFFFFFFFF if memcg.isdigit() else 1,
               int(nid) & 0xFFFFFFFF if nid.isdigit() else 0)
        return oracle.max_seq.get(key, 3)

    n = draw(st.integers(1, 4))
    buf = draw(st.sampled_from(("", "", "\n", ",", " ;")))
    pieces: list[str] = []
    failed: int | None = None
    err = 0
    for i in range(n):
        kind = draw(st.integers(0, 9))
        if kind == 9:
            raw = draw(st.text(_RANDOM_ALPHABET, min_size=1, max_size=16))
        else:
            bad = draw(st.sampled_from(sorted(_BAD))) if kind >= 6 else None
            raw = draw(_structured_piece(max_seq_of, bad))
        cur = raw.lstrip(WS)
        if cur.startswith("-") and oracle.eviction:
            raw = raw.replace("-", "x", 1)  # eviction is modelled: not this test's business
            cur = raw.lstrip(WS)
        if i:
            buf += draw(st.sampled_from(_SEPS))
        buf += raw
        if not cur:
            continue
        pieces.append(cur)
        if failed is None:
            out = oracle.run(cur)
            if out.errno:
                failed, err = len(pieces) - 1, out.errno
    buf += draw(st.sampled_from(("", "\n", "\n", ",", ";\n", "\0+ garbage")))
    if not pieces:  # no command ran: lru_gen_seq_write() returns its initial -EINVAL
        failed, err = 0, errno.EINVAL
    return buf, pieces, failed, err
