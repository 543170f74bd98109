"""The scheduling policy on a fake clock: deadlines, batches, bounded memory, no starvation, the window."""

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from engine.scheduler import BatchPlanner, RenderTimeEstimator


def planner(*, max_batch: int = 8, window_s: float = 0.003, late_drop_s: float = 0.09) -> BatchPlanner[str]:
    return BatchPlanner(RenderTimeEstimator(), max_batch=max_batch, batch_window_s=window_s, late_drop_s=late_drop_s)


@dataclass(frozen=True)
class Arrival:
    time_s: float
    session: str
    deadline_s: float


@dataclass(frozen=True)
class Rendered:
    item: str
    waiting_since_s: float
    start_s: float
    end_s: float
    deadline_s: float
    batch_size: int


def simulate(
    plan: BatchPlanner[str], arrivals: list[Arrival], cost_s: Callable[[int], float]
) -> tuple[list[Rendered], list[str]]:
    """Run the planner as the scheduler does, on a fake clock, with one renderer that takes ``cost_s(batch)``.

    Returns the rendered requests and the items superseded or expired. An item
    is named ``session@index`` of its arrival.
    """
    pending = sorted(arrivals, key=lambda arrival: arrival.time_s)
    rendered: list[Rendered] = []
    unrendered: list[str] = []
    busy_until_s = 0.0
    index = 0
    while index < len(pending) or plan.pending_count:
        due_s = plan.due_s()
        start_s = math.inf if due_s is None else max(due_s, busy_until_s)
        if index < len(pending) and pending[index].time_s <= start_s:
            arrival = pending[index]
            item = f"{arrival.session}@{index}"
            replaced = plan.submit(arrival.session, item, deadline_s=arrival.deadline_s, now_s=arrival.time_s)
            if replaced is not None:
                unrendered.append(replaced)
            index += 1
            continue
        batch = plan.take_batch(start_s)
        unrendered += [slot.item for slot in batch.expired]
        if not batch.slots:
            continue
        duration_s = cost_s(len(batch.slots))
        plan.estimator.observe(len(batch.slots), duration_s)
        busy_until_s = start_s + duration_s
        rendered += [
            Rendered(slot.item, slot.waiting_since_s, start_s, busy_until_s, slot.deadline_s, len(batch.slots))
            for slot in batch.slots
        ]
    return rendered, unrendered


def test_deadlines_are_met_when_capacity_allows() -> None:
    # 6 sessions at 25 fps for 2 s, in two groups whose frames fall due together,
    # 30 ms to render each frame; a batch of 3 costs 10 ms: capacity to spare
    arrivals = [
        Arrival(t_s, f"s{session}", t_s + 0.030)
        for session in range(6)
        for t_s in (frame / 25 + (session % 2) * 0.017 + session * 0.0005 for frame in range(50))
    ]
    rendered, unrendered = simulate(planner(), arrivals, lambda batch: 0.004 + 0.002 * batch)
    assert unrendered == []
    assert len(rendered) == len(arrivals)
    assert all(frame.end_s <= frame.deadline_s for frame in rendered)
    assert max(frame.batch_size for frame in rendered) == 3  # each group shares one generator call
    assert all(frame.start_s - frame.waiting_since_s <= 0.003 + 1e-9 for frame in rendered)


def test_a_burst_is_split_in_batches_of_max_batch_by_deadline() -> None:
    plan = planner(max_batch=8)
    deadlines = [1.0 + 0.001 * k for k in range(20)]
    for k in random.Random(0).sample(range(20), 20):
        plan.submit(f"s{k}", f"s{k}", deadline_s=deadlines[k], now_s=0.0)
    assert plan.due_s() <= 0.0  # a full batch does not wait for the window
    batches = [plan.take_batch(0.0).slots for _ in range(3)]
    assert [len(batch) for batch in batches] == [8, 8, 4]
    assert [slot.deadline_s for batch in batches for slot in batch] == deadlines
    assert plan.pending_count == 0 and plan.due_s() is None


def test_a_session_faster_than_rendering_keeps_only_its_newest_request() -> None:
    plan = planner()
    assert plan.submit("a", "a1", deadline_s=1.0, now_s=0.0) is None
    assert plan.submit("a", "a2", deadline_s=1.04, now_s=0.04) == "a1"
    assert plan.submit("a", "a3", deadline_s=1.08, now_s=0.08) == "a2"
    assert plan.pending_count == 1
    (slot,) = plan.take_batch(0.1).slots
    assert (slot.item, slot.deadline_s, slot.priority_s, slot.waiting_since_s) == ("a3", 1.08, 1.0, 0.0)


def test_pending_requests_never_exceed_the_sessions_under_random_load() -> None:
    rng = random.Random(1)
    sessions = [f"s{k}" for k in range(12)]
    plan = planner(max_batch=4, late_drop_s=0.05)
    now_s = 0.0
    pending: dict[str, str] = {}  # the model: each session's newest unresolved request
    resolved: list[str] = []
    for step in range(5000):
        now_s += rng.uniform(0.0, 0.004)
        action = rng.random()
        if action < 0.6:
            session = rng.choice(sessions)
            item = f"{session}@{step}"
            replaced = plan.submit(session, item, deadline_s=now_s + rng.uniform(-0.02, 0.1), now_s=now_s)
            assert replaced == pending.get(session)
            pending[session] = item
            resolved += [replaced] if replaced else []
        elif action < 0.95:
            batch = plan.take_batch(now_s)
            assert len(batch.slots) <= plan.max_batch
            assert [s.priority_s for s in batch.slots] == sorted(s.priority_s for s in batch.slots)
            for slot in batch.slots + batch.expired:
                assert pending.pop(str(slot.session_id)) == slot.item
                resolved.append(slot.item)
        else:
            session = rng.choice(sessions)
            assert plan.forget(session) == pending.pop(session, None)
        assert plan.pending_count == len(pending) <= len(sessions)
    assert len(resolved) == len(set(resolved))  # each request is resolved once


def test_no_session_starves_under_sustained_full_load() -> None:
    # 13 sessions, batches of 4, every session submits a new frame before every
    # batch, in a random order, replacing its pending one with a later deadline:
    # the renderer never catches up, and each session must still be served
    # within ceil(13/4) batches of its first waiting request
    sessions = [f"s{k}" for k in range(13)]
    budget_s, cost_s = 0.05, 0.01
    plan = planner(max_batch=4)
    rng = random.Random(2)
    waiting_since_batch: dict[str, int] = {}
    longest_wait = 0
    served: set[str] = set()
    for batch_index in range(400):
        now_s = batch_index * cost_s
        for position, session in enumerate(rng.sample(sessions, len(sessions))):
            submit_s = now_s + position * 1e-5
            plan.submit(session, session, deadline_s=submit_s + budget_s, now_s=submit_s)
            waiting_since_batch.setdefault(session, batch_index)
        batch = plan.take_batch(now_s + cost_s / 2)
        assert batch.expired == [] and len(batch.slots) == 4
        for slot in batch.slots:
            longest_wait = max(longest_wait, batch_index - waiting_since_batch.pop(slot.item) + 1)
            served.add(slot.item)
    assert served == set(sessions)
    assert longest_wait == math.ceil(len(sessions) / 4)


def test_a_lone_request_waits_at_most_the_window() -> None:
    plan = planner(window_s=0.003)
    plan.submit("a", "a", deadline_s=10.0, now_s=1.0)
    assert plan.due_s() == pytest.approx(1.003)
    plan.submit("b", "b", deadline_s=10.0, now_s=1.002)
    assert plan.due_s() == pytest.approx(1.003)  # the window counts from the first pending request


def test_a_near_deadline_cuts_the_window_by_the_render_time() -> None:
    plan = planner(window_s=0.003)
    plan.estimator.observe(1, 0.010)
    plan.submit("a", "a", deadline_s=1.012, now_s=1.0)
    assert plan.due_s() == pytest.approx(1.002)
    plan.forget("a")
    plan.submit("a", "a", deadline_s=1.005, now_s=1.0)
    assert plan.due_s() < 1.0  # no time to wait at all: start now


def test_hopeless_requests_expire_and_the_rest_are_rendered() -> None:
    plan = planner(late_drop_s=0.09)
    plan.submit("stale", "stale", deadline_s=1.0, now_s=0.95)
    plan.submit("late", "late", deadline_s=1.05, now_s=1.0)
    plan.submit("fresh", "fresh", deadline_s=1.2, now_s=1.1)
    batch = plan.take_batch(1.1)
    assert [slot.item for slot in batch.expired] == ["stale"]
    assert [slot.item for slot in batch.slots] == ["late", "fresh"]


def test_forget_and_drain_hand_back_pending_requests() -> None:
    plan = planner()
    plan.submit("a", "a1", deadline_s=1.0, now_s=0.0)
    plan.submit("b", "b1", deadline_s=1.0, now_s=0.0)
    assert plan.forget("a") == "a1"
    assert plan.forget("a") is None
    assert plan.drain() == ["b1"]
    assert plan.pending_count == 0


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        planner(max_batch=0)
    with pytest.raises(ValueError, match="late_drop_s"):
        planner(late_drop_s=-1.0)
