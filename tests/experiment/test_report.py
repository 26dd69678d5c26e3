"""The report: PNGs and one self-contained HTML page. Mirrors mglru/experiment/report.py."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import exp_runners
import pytest

from mglru.experiment.report import METRICS, report
from mglru.experiment.spec import expand, parse_spec

pytest.importorskip("matplotlib")

THREAD = """
[experiment]
name = "tq"
description = "Does the seed's aging pay for itself?"
[base]
workload = "zipf"
[grid]
preset = ["v6.10", "seed-v4", "v6.15"]
arch = ["x86-tdp", "arm64"]
locality = [1, 64, 512]
[report]
kind = "thread-question"
"""

CAP = """
[experiment]
name = "cap"
[grid]
cap_0x8 = [true, false]
vcpus = [1, 4]
"""


class _Page(HTMLParser):
    """The page's images, table cells, headings and paragraphs."""

    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict] = []
        self.text: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        for key in ("src", "href"):
            if key in a and not a[key].startswith(("data:", "#")):
                self.external.append(a[key])

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text())
    return page


def rows_of(text: str, runner=exp_runners.run_point) -> tuple[object, list[dict]]:  # noqa: ANN001
    spec = parse_spec(text)
    return spec, [runner(p) for p in expand(spec)]


#: the generic plots drawn in the tests that look at something else (each PNG costs time)
FEW = ("combined_cost_ms", "wss_error")


@pytest.fixture(scope="module")
def tq(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """The thread-question-like study's report, every metric plotted (drawn once)."""
    out = tmp_path_factory.mktemp("tq")
    spec, rows = rows_of(THREAD)
    assert report(rows, str(out), specs=[spec]) == str(out / "report.html")
    return out, rows


def test_report_embeds_every_png_it_writes(tq: tuple[Path, list[dict]]) -> None:
    """report.html holds each PNG as a base64 data URI, byte for byte, and links nothing."""
    tmp_path, _ = tq
    pngs = {p.name: p.read_bytes() for p in tmp_path.glob("*.png")}
    assert "tq-winner.png" in pngs and "tq-vs-baseline.png" in pngs
    assert {f"tq-{m}.png" for m in METRICS} <= set(pngs)
    page = parse(tmp_path / "report.html")
    assert page.external == []
    embedded = []
    for img in page.imgs:
        head, _, data = img["src"].partition(",")
        assert head == "data:image/png;base64"
        embedded.append(base64.b64decode(data))
    assert all(b.startswith(b"\x89PNG\r\n\x1a\n") for b in embedded)
    assert sorted(embedded) == sorted(pngs.values())


def test_report_tables_and_description(tq: tuple[Path, list[dict]]) -> None:
    """The spec's description, a key-metrics row per point, the varying parameters named."""
    tmp_path, rows = tq
    page = parse(tmp_path / "report.html")
    text = "\n".join(page.text)
    assert "Does the seed's aging pay for itself?" in text
    for r in rows:
        assert r["run_id"] in page.text
    assert "varying: preset, arch, locality." in text
    assert "combined_cost_ms" in page.text and "Which preset wins" in page.text


def test_thread_question_winner_and_baseline(tmp_path: Path) -> None:
    """The winner map names the cheapest preset per cell, relative to v6.10."""
    spec, rows = rows_of(THREAD)
    report(rows, str(tmp_path), specs=[spec], metrics=())
    page = parse(tmp_path / "report.html")
    alts = [img["alt"] for img in page.imgs]
    assert alts == ["Which preset wins", "Refault cost and overhead against v6.10"]
    # without the baseline: the winner map still, and absolute values beside
    no_base = [r for r in rows if r["preset"] != "v6.10"]
    report(no_base, str(tmp_path / "nb"), specs=[spec], metrics=())
    text = "\n".join(parse(tmp_path / "nb" / "report.html").text)
    assert "No v6.10 rows: absolute values" in text


def test_missing_columns_are_a_note_not_a_crash(tmp_path: Path) -> None:
    """Rows without arch: the thread-question map is left out with a note saying why."""
    spec, rows = rows_of(THREAD)
    rows = [{k: v for k, v in r.items() if k != "arch"} for r in rows if r["arch"] == "arm64"]
    report(rows, str(tmp_path), specs=[spec], metrics=FEW)
    text = "\n".join(parse(tmp_path / "report.html").text)
    assert "not drawn: the rows have no arch" in text
    assert not (tmp_path / "tq-winner.png").exists()


def test_cover_letter_claim_cap_on_and_off(tmp_path: Path) -> None:
    """cover-letter-claim: wss_error and overhead with cap_0x8 on and off, one PNG."""
    spec, rows = rows_of(CAP.replace('name = "cap"', 'name = "cover-letter-claim"'))
    report(rows, str(tmp_path), specs=[spec], metrics=FEW)
    assert (tmp_path / "cover-letter-claim-cap_0x8.png").exists()
    alts = [i["alt"] for i in parse(tmp_path / "report.html").imgs]
    assert alts[0] == "cap 0x8 on and off"


def test_mixed_host_per_memcg_columns(tmp_path: Path) -> None:
    """mixed-host: the per-side columns the rows have, per agent; a note when there are none."""
    text = ('[experiment]\nname = "mixed-host"\n[grid]\npreset = ["v6.10", "seed-v4"]\n'
            'agent = ["none", "age-threshold"]\n')
    spec, rows = rows_of(text)
    report(rows, str(tmp_path / "a"), specs=[spec], metrics=())
    assert "no per-side columns" in "\n".join(parse(tmp_path / "a" / "report.html").text)
    for i, r in enumerate(rows):
        r.update(guest_rss_mib_end=10.0 + i, host_rss_mib_end=5.0, guest_refaults=3 * i,
                 host_refaults=i)
    report(rows, str(tmp_path / "b"), specs=[spec], metrics=())
    assert (tmp_path / "b" / "mixed-host-memcgs.png").exists()
    text = "\n".join(parse(tmp_path / "b" / "report.html").text)
    assert "Per side: guest_rss_mib_end, host_rss_mib_end, guest_refaults, host_refaults; " \
           "per preset and agent" in text


def test_thread_question_one_map_per_workload(tmp_path: Path) -> None:
    """A varying workload: a winner map and a baseline figure for each workload."""
    spec, rows = rows_of(THREAD.replace('[grid]', '[grid]\nworkload = ["zipf", "hotcold"]'))
    report(rows, str(tmp_path), specs=[spec], metrics=())
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["tq-vs-baseline-hotcold.png", "tq-vs-baseline-zipf.png",
                     "tq-winner-hotcold.png", "tq-winner-zipf.png"]
    alts = [i["alt"] for i in parse(tmp_path / "report.html").imgs]
    assert alts[0] == "Which preset wins (workload zipf)"


def test_report_reads_a_results_file_with_errors(tmp_path: Path) -> None:
    """A JSON-lines path: its rows, and the failed points in their own table."""
    spec, rows = rows_of(CAP)
    out = tmp_path / "r.jsonl"
    err = {"run_id": "0123456789abcdef", "error": "RuntimeError: boom"}
    out.write_text("".join(json.dumps(r) + "\n" for r in [*rows, err]))
    report(str(out), str(tmp_path / "rep"), metrics=FEW)
    text = "\n".join(parse(tmp_path / "rep" / "report.html").text)
    assert "RuntimeError: boom" in text and "Failed points" in text
    assert f"{len(rows)} rows, 1 failed points from {out}" in text
    with pytest.raises(ValueError, match="no rows"):
        report([], str(tmp_path / "empty"))
