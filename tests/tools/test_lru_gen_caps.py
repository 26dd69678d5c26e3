"""lru_gen_usable under v4 and upstream rules (checklist 40), on SimKernel and host trees."""

from __future__ import annotations

import pytest

from mglru import SimKernel
from mglru.abi import LRU_GEN_ENABLED, FeatureUnavailable
from mglru.tools.lru_gen import check_lru_gen_usable, lru_gen_usable, read_caps, strtol16


@pytest.mark.parametrize(("text", "value"), [
    ("0x0007\n", 7), ("0x000f\n", 15), ("  0xF", 15), ("7", 7), ("0X1b", 27),
    ("zz", 0), ("0x", 0), ("0xg", 0), ("-0x2", -2), ("+a", 10), ("", 0), ("0x0007"[:3], 0),
])
def test_strtol16_is_cs(text, value):
    """strtol(s, NULL, 16): leading space, sign, optional 0x, digits up to the first non-digit."""
    assert strtol16(text) == value


@pytest.mark.parametrize(("config", "printed"), [("v6.10", "0x0007\n"), ("seed-v4", "0x000f\n"),
                                                 ("v6.12", "0x0007\n")])
def test_checklist_40_the_models_print_what_the_test_needs(config, printed):
    """40: a model kernel prints 0x0007 (or 0x000f for the v4 variant)."""
    k = SimKernel(config)
    assert k.read(LRU_GEN_ENABLED) == printed
    assert read_caps(k) == int(printed, 16)


@pytest.mark.parametrize(("config", "v4", "upstream"), [
    ("v6.10", False, True), ("seed-v4", True, True), ("v6.12", False, True),
])
def test_checklist_40_usable_requires_0x3_upstream_and_0xb_v4(config, v4, upstream):
    """40: bits 0x1|0x2 (upstream) or additionally 0x8 (v4)."""
    k = SimKernel(config)
    assert lru_gen_usable(k, "v4") is v4
    assert lru_gen_usable(k, "upstream") is upstream


@pytest.mark.parametrize(("write", "v4_reason", "upstream_reason"), [
    ("0x7", "lru_gen does not support SECONDARY_MMU_WALK", None),
    ("0xd", "lru_gen does not support MM_WALK",
     "lru_gen: missing features, got: 0xd, expected: 0x3"),
    ("n", "lru_gen is not enabled", "lru_gen: missing features, got: 0x0, expected: 0x3"),
])
def test_each_missing_bit_has_the_c_tests_message(write, v4_reason, upstream_reason):
    """Clearing caps at runtime: the reasons are the selftests' own lines."""
    k = SimKernel("seed-v4")
    k.write(LRU_GEN_ENABLED, write)
    for rules, reason in (("v4", v4_reason), ("upstream", upstream_reason)):
        if reason is None:
            assert check_lru_gen_usable(k, rules) == read_caps(k)
            continue
        with pytest.raises(FeatureUnavailable) as info:
            check_lru_gen_usable(k, rules)
        assert info.value.reason == reason
        assert info.value.hint  # always says how to get it


def test_hw_without_accessed_bits_lacks_mm_walk():
    """No hardware accessed bits: MM_WALK is reported off whatever the keys say."""
    k = SimKernel("v6.12", hw_pte_young=False)
    assert read_caps(k) & 0x2 == 0
    with pytest.raises(FeatureUnavailable) as info:
        check_lru_gen_usable(k, "upstream")
    assert info.value.feature == "MM_WALK"
    assert "sets accessed bits" in info.value.hint


def test_unknown_rules():
    """Rules are v4 or upstream."""
    with pytest.raises(ValueError, match="got 'v5'"):
        check_lru_gen_usable(SimKernel("v6.10"), "v5")
