"""What-if on identical simulated traffic: with one region understaffed, the EWT overflow policy
improves that region's service level without pushing any region that met the target below it."""

from __future__ import annotations

import pytest

from streams.simulator.run import DEFAULT_START
from streams.simulator.whatif import compare

pytestmark = pytest.mark.unit
REGIONS = ["RU-MOW", "RU-SPE", "RU-NVS", "RU-SVE", "RU-KDA", "RU-KGD"]
TARGET = 0.8


def test_policy_helps_the_understaffed_region_and_spares_the_others() -> None:
    baseline, policy = compare(REGIONS, 24, 3, DEFAULT_START, {"RU-MOW": 0.75})
    assert baseline.overflowed == 0 and policy.overflowed > 1_000
    assert sum(t.offered for t in baseline.by_home.values()) == sum(
        t.offered for t in policy.by_home.values()
    )
    mow_before, mow_after = baseline.by_home["RU-MOW"].service_level, policy.by_home["RU-MOW"].service_level
    assert mow_before is not None and mow_after is not None and mow_after > mow_before + 0.2
    for region in REGIONS:
        for view in ("by_home", "by_server"):
            before = getattr(baseline, view)[region].service_level
            after = getattr(policy, view)[region].service_level
            if before >= TARGET:
                assert after >= TARGET, (region, view, before, after)
    assert policy.total().service_level > baseline.total().service_level
