"""Probes time the real functions from outside and leave them as they were."""

import time
import types

from bench.probes import Probe, StageTimer, probed


class Worker:
    def step(self, seconds: float) -> str:
        time.sleep(seconds)
        return "done"


def test_probes_time_class_instance_and_module_attributes_and_restore_them() -> None:
    module = types.SimpleNamespace(helper=lambda: time.sleep(0.002))
    worker, other = Worker(), Worker()
    original_method = Worker.step
    timer = StageTimer()
    with probed(timer, [Probe("class", Worker, "step"), Probe("module", module, "helper")]):
        assert worker.step(0.004) == "done"
        other.step(0.0)
        module.helper()
    with probed(timer, [Probe("instance", worker, "step")]):
        worker.step(0.003)
        other.step(0.003)  # another object of the class: not probed
    taken = timer.take()
    assert set(taken) == {"class", "module", "instance"}
    assert taken["class"] >= 4.0 and taken["module"] >= 2.0 and 3.0 <= taken["instance"] < 6.0
    assert Worker.step is original_method and "step" not in vars(worker)
    assert timer.take() == {}
