"""NewestWins: a slow consumer gets the newest item, never an older one after a newer."""

import asyncio

from engine.live import NewestWins


def test_a_newer_item_replaces_the_waiting_one() -> None:
    drops: list[None] = []
    slot: NewestWins[str] = NewestWins(on_drop=lambda: drops.append(None))
    assert slot.offer(1, "one") and slot.offer(2, "two")
    assert slot.take() == "two" and slot.take() is None
    assert slot.dropped == 1 == len(drops)


def test_an_item_older_than_one_taken_or_waiting_is_refused() -> None:
    slot: NewestWins[str] = NewestWins()
    slot.offer(5, "five")
    assert not slot.offer(4, "four")  # older than the one waiting: the waiting one stays
    assert slot.take() == "five"
    assert not slot.offer(5, "five again") and not slot.offer(3, "three")  # not newer than the one taken
    assert slot.offer(6, "six") and slot.take() == "six"
    assert slot.dropped == 3 and slot.newest_taken == 6


async def test_get_waits_for_an_item_and_clear_drops_it() -> None:
    slot: NewestWins[int] = NewestWins()
    getting = asyncio.create_task(slot.get())
    await asyncio.sleep(0)
    assert not getting.done()
    slot.offer(0, 10)
    assert await getting == 10
    slot.offer(1, 11)
    slot.clear()
    assert not slot.waiting and slot.dropped == 1
