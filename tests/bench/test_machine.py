"""What a result records about the machine it ran on: the hypervisor's share of the CPU during the run."""

import pytest

from bench import machine


def test_steal_share_is_the_stolen_part_of_all_cpu_time_since_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    start = [100, 0, 50, 800, 0, 0, 0, 50]
    monkeypatch.setattr(machine, "cpu_times", lambda: [400, 0, 150, 1100, 0, 0, 0, 350])  # +300 of +1000 stolen
    assert machine.steal_share(start) == pytest.approx(0.3)
    assert machine.steal_share(None) is None


def test_steal_share_reads_this_machine() -> None:
    start = machine.cpu_times()
    if start is None:
        pytest.skip("no /proc/stat here")
    sum(range(2_000_000))  # some CPU time passes
    share = machine.steal_share(start)
    assert share is None or 0.0 <= share <= 1.0
