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
    doc = json.loads(out.read_text())
    assert doc["schema"] == "mglru.seed-table/1"
    rows = doc["rows"]
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


def test_seed_table_also_adds_preset_rows_one_variable_at_a_time(tmp_path):
    """--also runs aging on other presets beside the three; their rows have no cover letter."""
    out = tmp_path / "t.json"
    r = CliRunner().invoke(cli, ["reproduce", "seed-table", "--vcpus", "2", "--scale", "16",
                                 "--also", "v6.15,v5-fast-only", "--json", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    rows = {x["config"]: x for x in json.loads(out.read_text())["rows"]}
    assert list(rows) == ["no aging", "no opt", "opt", "v6.15", "v5-fast-only"]
    line = next(s for s in r.stdout.splitlines() if s.startswith("2 (v6.15)"))
    assert "%" not in line                                    # nothing to compare with
    # v6.15 ages x86 TDP locklessly like seed-v4: its pass is near "opt", far below "no opt"
    assert rows["v6.15"]["aging_pass_s"] < 0.8 * rows["no opt"]["aging_pass_s"]
    assert rows["v6.15"]["aging_pass_s"] == pytest.approx(rows["opt"]["aging_pass_s"], rel=0.25)


def test_seed_table_other_arch_has_no_error_column():
    """--arch arm64: the KVM model's locks change and every row is a prediction."""
    r = CliRunner().invoke(cli, ["reproduce", "seed-table", "--vcpus", "1", "--scale", "16",
                                 "--arch", "arm64", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "arm64 KVM model" in r.stdout and "0.878822016" not in r.stdout
    assert "%" not in r.stdout.split("num_vcpus")[1]


def test_seed_table_rejects_unknown_preset():
    """An unknown --also preset is a usage error naming the known ones."""
    r = CliRunner().invoke(cli, ["reproduce", "seed-table", "--also", "v9.99"])
    assert r.exit_code == 2 and "v9.99" in r.output and "seed-v4" in r.output
