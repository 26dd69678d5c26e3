"""kselftest conventions: exit codes, TEST_ASSERT / __TEST_REQUIRE, pr_info lines. v4 7/7.

The port prints what the C test prints, so its users recognise it:

- `pr_info` lines on stdout, timings as `"%-30s: %ld.%09lds"`;
- a failed `TEST_ASSERT` prints "==== Test Assertion Failure ====", the
  expression, `pid=.. tid=.. errno=..` and the message on stderr, and the
  test fails (`KSFT_FAIL`);
- a failed `__TEST_REQUIRE` is kselftest's skip: `1..0 # SKIP - <message>`
  on stdout, exit `KSFT_SKIP`.

The C library's `test_assert()` exits 254, which the kselftest runner also
counts as a failure; the port exits `KSFT_FAIL` (1), as the issue asks.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

__all__ = ["KSFT_PASS", "KSFT_FAIL", "KSFT_SKIP", "EXIT_INTERRUPTED", "TestFailure",
           "TestSkip", "test_assert", "test_require", "timespec", "Log"]

KSFT_PASS = 0
KSFT_FAIL = 1
KSFT_SKIP = 4
#: Ctrl-C: 128 + SIGINT, after the memcg was removed
EXIT_INTERRUPTED = 130


class TestFailure(AssertionError):
    """A TEST_ASSERT that did not hold: the test fails.

    Attributes:
        expr: the asserted expression, as the C test spells it.
        message: the C test's message.
    """

    __test__ = False  # not a pytest class

    def __init__(self, message: str, expr: str = "") -> None:
        """A failure with the C test's message and asserted expression."""
        super().__init__(message)
        self.expr = expr
        self.message = message


class TestSkip(Exception):
    """A __TEST_REQUIRE that did not hold: the test is skipped (KSFT_SKIP).

    Attributes:
        message: the C test's message.
        hint: how to get what is missing, or "".
    """

    __test__ = False

    def __init__(self, message: str, hint: str = "") -> None:
        """A skip with the C test's message and a hint."""
        super().__init__(message)
        self.message = message
        self.hint = hint


def test_assert(cond: bool, message: str, expr: str = "") -> None:
    """TEST_ASSERT(cond, message).

    Raises:
        TestFailure: `cond` is false.
    """
    if not cond:
        raise TestFailure(message, expr)


test_assert.__test__ = False  # type: ignore[attr-defined]


def test_require(cond: bool, message: str) -> None:
    """__TEST_REQUIRE(cond, message).

    Raises:
        TestSkip: `cond` is false.
    """
    if not cond:
        raise TestSkip(message)


test_require.__test__ = False  # type: ignore[attr-defined]


def timespec(ns: int) -> str:
    """`%ld.%09lds` of a duration in ns."""
    ns = max(0, int(ns))
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}s"


@dataclass
class Log:
    """The test's console and its machine-readable record.

    Attributes:
        out: pr_info / printf stream.
        err: TEST_ASSERT stream.
        record: what `--json` writes (phases, generations, warnings, result).
    """

    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    record: dict[str, Any] = field(default_factory=lambda: {"phases": [], "warnings": []})

    def pr_info(self, line: str = "") -> None:
        """One line on stdout."""
        print(line, file=self.out, flush=True)

    def timed(self, description: str, ns: int, **extra: Any) -> None:
        """`%-30s: %ld.%09lds` and a phase record."""
        self.pr_info(f"{description:<30}: {timespec(ns)}")
        self.record["phases"].append({"description": description, "ns": int(ns), **extra})

    def untimed(self, description: str) -> None:
        """`%-30s` (an iteration started without waiting for it)."""
        self.pr_info(f"{description:<30}")
        self.record["phases"].append({"description": description, "ns": None})

    def warning(self, text: str) -> None:
        """A `WARNING: ...` line."""
        self.pr_info(f"WARNING: {text}")
        self.record["warnings"].append(text)

    def assertion_failure(self, e: TestFailure, pid: int) -> None:
        """What test_assert() prints on stderr."""
        print("==== Test Assertion Failure ====", file=self.err)
        print(f"  access_tracking_perf_test: {e.expr or 'false'}", file=self.err)
        print(f"  pid={pid} tid={pid} errno=0 - Success", file=self.err)
        for line in e.message.splitlines() or [""]:
            print(f"  {line}", file=self.err)
        self.err.flush()

    def skip(self, message: str, hint: str = "") -> None:
        """ksft_exit_skip("- message"), and the hint as a TAP comment."""
        self.pr_info(f"1..0 # SKIP - {message}")
        if hint:
            self.pr_info(f"# {hint}")
