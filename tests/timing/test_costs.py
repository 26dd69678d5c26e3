"""The cost model file and its validation. Mirrors mglru/timing/costs.py."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from mglru.timing import COST_KEYS, load_costs, zero_costs
from mglru.timing.costs import STATUSES

PACKAGED = resources.files("mglru.timing").joinpath("costs.toml").read_text()


def test_packaged_costs_cover_every_key_with_provenance():
    """Every cost of COST_KEYS is in costs.toml with a status and a source."""
    c = load_costs()
    assert set(c) == set(COST_KEYS)
    for name, entry in c.entries.items():
        assert entry.status in STATUSES, name
        assert len(entry.source) > 20, name
        assert c[name] == getattr(c, name) == entry.ns
        if entry.status == "calibrated":
            # a calibrated cost names the cover-letter row(s) that fixed it
            assert "row" in entry.source and "cover letter" in entry.source, name


def _dump(table: dict) -> str:
    """TOML text of a {name: {field: value}} table (the format of costs.toml)."""
    def val(v):
        return f'"{v}"' if isinstance(v, str) else repr(v)
    return "\n".join(f"[{k}]\n" + "".join(f"{f} = {val(v)}\n" for f, v in fields.items())
                     for k, fields in table.items())


def test_fault_path_sums_below_the_cover_letter_row():
    """The per-fault costs at one vCPU stay below 3352 ns (row "1 (no aging)": 0.879 s / 262144)."""
    c = load_costs()
    per_fault = (c.kvm_exit + c.host_fault + c.page_zero + c.memcg_charge + c.spte_install
                 + c.guest_page_access + c.lru_add_folio + c.pcp_refill // 63)
    assert per_fault < 3352


def _write(tmp_path, text):
    path = tmp_path / "costs.toml"
    path.write_text(text)
    return path


def test_unknown_cost_rejected_with_valid_keys(tmp_path):
    """A misspelt cost in a file is rejected and the valid keys are listed."""
    path = _write(tmp_path, PACKAGED + '\n[atomik]\nns = 1\nper = "x"\nstatus = "provisional"\n'
                  'source = "typo"\n')
    with pytest.raises(KeyError, match=r"unknown cost in .*atomik.*valid costs: kvm_exit"):
        load_costs(path)


def test_unknown_field_rejected(tmp_path):
    """A field other than ns/per/status/source is rejected, listing the valid fields."""
    table = tomllib.loads(PACKAGED)
    table["atomic"]["units"] = "ns"
    with pytest.raises(KeyError, match="valid fields: ns, per, status, source"):
        load_costs(_write(tmp_path, _dump(table)))


def test_missing_cost_rejected(tmp_path):
    """Every key must be present: a missing cost never falls back to a default."""
    table = tomllib.loads(PACKAGED)
    del table["cmpxchg"]
    text = "\n".join(
        f'[{k}]\nns = {v["ns"]}\nper = "{v["per"]}"\nstatus = "{v["status"]}"\nsource = "s"\n'
        for k, v in table.items())
    with pytest.raises(ValueError, match="missing cost key.*cmpxchg"):
        load_costs(_write(tmp_path, text))


@pytest.mark.parametrize("bad, match", [
    (-1, "non-negative int"),
    (1.5, "non-negative int"),
    ("20", "non-negative int"),
])
def test_bad_values_rejected(tmp_path, bad, match):
    """ns must be a non-negative int."""
    table = tomllib.loads(PACKAGED)
    table["atomic"]["ns"] = bad
    with pytest.raises(ValueError, match=match):
        load_costs(_write(tmp_path, _dump(table)))


def test_bad_status_rejected(tmp_path):
    """status is provisional, calibrated or measured."""
    table = tomllib.loads(PACKAGED)
    table["atomic"]["status"] = "guessed"
    with pytest.raises(ValueError, match="status must be one of provisional, calibrated"):
        load_costs(_write(tmp_path, _dump(table)))


def test_overrides():
    """Overrides change values and mark them; unknown overrides are rejected."""
    c = load_costs(atomic=7)
    assert c.atomic == 7 and c.entries["atomic"].source == "override"
    with pytest.raises(KeyError, match="unknown cost override.*atomik.*valid costs"):
        load_costs(atomik=7)
    with pytest.raises(ValueError, match="non-negative int"):
        c.replace(atomic=-3)
    with pytest.raises(AttributeError, match="unknown cost 'atomik'"):
        _ = c.atomik
    with pytest.raises(AttributeError, match="frozen"):
        c.atomic = 3
    z = zero_costs(lock_handoff=5)
    assert z.lock_handoff == 5 and z.atomic == 0
