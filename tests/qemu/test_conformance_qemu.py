"""`mglru conformance` on the real 6.12 kernel: the JSON records, and a step QEMU cannot do."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import qemu_children, require_kernel

from mglru.cli import cli

pytestmark = pytest.mark.qemu


def test_aging_conforms_on_6_12(tmp_path):
    """The aging scenario matches v6.12 within the tolerance; the JSON has the stated keys."""
    require_kernel("6.12")
    before = qemu_children()
    out = tmp_path / "c.json"
    r = CliRunner().invoke(cli, ["conformance", "--kernel", "6.12", "--scenario", "aging",
                                 "--json", str(out)])
    records = json.loads(out.read_text())
    assert [(x["scenario"], x["kernel"], x["preset"]) for x in records] == [
        ("aging", "6.12", "v6.12")]
    assert set(records[0]) >= {"scenario", "kernel", "preset", "match", "differences"}
    assert records[0]["match"] is True, records[0]["differences"]
    assert r.exit_code == 0
    assert "aging            6.12    v6.12   true   0" in r.stdout
    assert qemu_children() == before


def test_unsupported_step_is_one_line(tmp_path):
    """A KVM guest step on the QEMU backend: one error line, exit 1, no QEMU left."""
    require_kernel("6.12")
    before = qemu_children()
    f = tmp_path / "vm.toml"
    f.write_text('[[step]]\nop="mkdir"\nmemcg="/a"\n[[step]]\nop="spawn"\ntask="t"\nmemcg="/a"\n'
                 '[[step]]\nop="mmap"\ntask="t"\nregion="r"\nsize="1M"\n'
                 '[[step]]\nop="vm_touch"\nregion="r"\n')
    r = CliRunner().invoke(cli, ["conformance", "--kernel", "6.12", "--scenario", str(f)])
    assert r.exit_code == 1
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("Error")]
    assert errors == ["Error: step vm_touch: a KVM guest inside the qemu backend is not "
                      "supported yet"]
    assert "Traceback" not in r.output
    assert qemu_children() == before
