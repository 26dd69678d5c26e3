"""`mglru reproduce seed-table`. Mirrors mglru/cli/reproduce.py."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mglru.cli import cli


def test_seed_table_prints_the_cover_letter_layout_json_and_plot(tmp_path):
    """Rows in the cover letter's layout with its values beside; JSON records; a PNG."""
    pytest.importorskip("matplotlib")
    out, png = tmp_path / "t.json", tmp_path / "t.png"
    r = CliRunner().invoke(cli, ["reproduce", "seed-table", "--vcpus", "1,2", "--scale", "16",
                                 "--json", str(out), "--plot", str(png)])
    assert r.exit_code == 0, r.output
    text = r.stdout
    assert "1 (no aging)" in text and "2 (opt)" in text and "n/a" in text
    assert "0.878822016" in text and "0.013996319" in text   # the cover letter beside
    assert "%" in text and "predictions" in text
    assert "[ 6/6]" in r.stderr                               # progress lines
    rows = json.loads(out.read_text())
    assert [(x["vcpus"], x["config"]) for x in rows] == [
        (1, "no aging"), (1, "no opt"), (1, "opt"), (2, "no aging"), (2, "no opt"), (2, "opt")]
    for x in rows:
        assert set(x) == {"vcpus", "config", "vcpu_wall_s", "aging_pass_s", "passes"}
        assert (x["aging_pass_s"] is None) == (x["passes"] is None) == (x["config"] == "no aging")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_seed_table_rejects_bad_vcpus():
    """A bad --vcpus list is a usage error (exit 2), not a traceback."""
    r = CliRunner().invoke(cli, ["reproduce", "seed-table", "--vcpus", "1,x"])
    assert r.exit_code == 2 and "comma-separated list" in r.output
