"""Times and durations as people type them: datetimes, ISO text, 'now', '-15min', '30s'.

All times become tz-aware UTC ``pd.Timestamp`` (naive datetimes and text are taken as UTC,
like Zeek's epoch ``ts``); Kafka timestamps are epoch milliseconds.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from wirestream.consumers.errors import WindowSpecError

TimeLike = str | dt.datetime | pd.Timestamp | float | int
DurationLike = str | dt.timedelta | pd.Timedelta | float | int


def parse_duration(value: DurationLike, what: str = "duration") -> pd.Timedelta:
    """'1min', '30s', 90 (seconds), timedelta -> Timedelta; negative is an error."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            delta = pd.Timedelta(seconds=value)
        else:
            delta = pd.Timedelta(value)
    except (ValueError, TypeError) as exc:
        raise WindowSpecError(f"{what} {value!r} is not a duration (try '30s', '15min')") from exc
    if pd.isna(delta) or delta < pd.Timedelta(0):
        raise WindowSpecError(f"{what} {value!r} must be a non-negative duration")
    return delta


def parse_time(
    value: TimeLike, what: str = "time", now: pd.Timestamp | None = None
) -> pd.Timestamp:
    """A point in time: datetime, epoch seconds, ISO text, 'now', or relative '-15min' / '+1h'."""
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    try:
        if isinstance(value, bool):
            raise TypeError("bool")
        if isinstance(value, int | float):
            stamp = pd.Timestamp(value, unit="s", tz="UTC")
        elif isinstance(value, str):
            text = value.strip()
            if text.lower() == "now":
                return now
            try:
                return pd.Timestamp(float(text), unit="s", tz="UTC")  # epoch seconds as text
            except ValueError:
                pass
            if text[:1] in "+-":
                sign = -1 if text[0] == "-" else 1
                return now + sign * parse_duration(text[1:].strip(), what)
            stamp = pd.Timestamp(text)
        else:
            stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise WindowSpecError(
            f"{what} {value!r} is not a time (use a datetime, epoch seconds, ISO text, 'now' "
            "or a relative time like '-15min')"
        ) from exc
    if pd.isna(stamp):
        raise WindowSpecError(f"{what} {value!r} is not a time")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def to_millis(stamp: pd.Timestamp, *, ceil: bool = False) -> int:
    """Epoch milliseconds of a UTC timestamp (floored, or ceiled), Kafka's timestamp unit."""
    micros = stamp.value // 1000
    return -(-micros // 1000) if ceil else micros // 1000


def millis_to_time(ms: int) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms", tz="UTC")
