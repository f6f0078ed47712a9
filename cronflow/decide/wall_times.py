"""Wall times and the instants they stand for in a zone, across daylight saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo


def exists(local: datetime) -> bool:
    """True when this wall time really occurs in its zone (is not in a DST gap)."""
    round_trip = local.astimezone(UTC).astimezone(local.tzinfo)
    return round_trip.replace(tzinfo=None) == local.replace(tzinfo=None)


def jump_instant(before_offset: datetime, after_offset: datetime) -> datetime:
    """The instant clocks jump forward across the gap holding this wall time."""
    assert before_offset.tzinfo is not None
    return offset_change(
        before_offset.tzinfo, after_offset.astimezone(UTC), before_offset.astimezone(UTC)
    )


def instant_of_wall(wall: datetime, zone: tzinfo) -> datetime:
    """The instant (UTC) of a naive wall time in `zone`: its first pass when it happens
    twice, the jump when it does not happen (a DST gap)."""
    first = wall.replace(tzinfo=zone, fold=0)
    if exists(first):
        return first.astimezone(UTC)
    return jump_instant(first, wall.replace(tzinfo=zone, fold=1))


def offset_change(zone: tzinfo, low: datetime, high: datetime) -> datetime:
    """The first instant, to the second, of `zone`'s new UTC offset, between `low` (which
    has the old offset) and `high` (which has the new one)."""
    old_offset = low.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == old_offset:
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0)
