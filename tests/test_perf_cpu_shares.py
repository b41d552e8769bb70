"""cpu_shares: who used the cores during a measurement, the hypervisor's
steal included (a neighbour's share reads as slowness of the code otherwise)."""
from __future__ import annotations

import time

import pytest

from loadtests import cpu_shares


def test_steal_is_read_from_proc_stat_and_counted_apart_from_idle():
    stolen = cpu_shares.stolen_seconds()
    assert stolen is not None and stolen >= 0  # Linux: the field exists (0 on bare metal)
    spent = {"busy": 0.0}

    def burn() -> float:
        return spent["busy"]

    with cpu_shares.CpuShares({"busy": burn}, cores=2) as shares:
        began = time.process_time()
        while time.process_time() - began < 0.2:
            pass
        spent["busy"] = time.process_time() - began
    result = shares.result
    assert result["parts"]["busy"]["cpu_s"] >= 0.2
    assert 0 <= result["stolen_share"] <= 1
    # The three add up to the machine (idle is what neither the parts nor the hypervisor took).
    total = result["parts"]["busy"]["share"] + result["stolen_share"] + result["idle_share"]
    assert total == pytest.approx(1.0, abs=0.01)


def test_an_unreadable_proc_stat_gives_no_figure_rather_than_a_wrong_one(monkeypatch, tmp_path):
    fake = tmp_path / "stat"
    fake.write_bytes(b"intr 1 2 3\n")
    real_open = open
    monkeypatch.setattr(cpu_shares, "open", lambda path, *a, **k: real_open(fake, *a, **k), raising=False)
    assert cpu_shares.stolen_seconds() is None
    with cpu_shares.CpuShares({}, cores=1) as shares:
        pass
    assert shares.result["stolen_share"] is None
