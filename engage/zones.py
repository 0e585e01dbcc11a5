"""IANA time zones, checked: where the best hour of a draft is given (engage.scoring.scorer.Scorer.best_hour).

Kept free of heavy imports so that `serve.py` checks its --time-zone options instantly.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

#: The time zone of a best hour when neither the request nor the account names one.
DEFAULT_TIME_ZONE = "UTC"


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def check_time_zone(value: str) -> str:
    """`value` when it is an IANA time zone name (Europe/Berlin, America/New_York, UTC), else a ValueError.

    Checked against the zone database's list, so a name is never used as a path."""
    if value not in _zones():
        raise ValueError(
            "is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, UTC); names are "
                         "case-sensitive")
    return value


def time_zone_info(name: str) -> ZoneInfo:
    """The ZoneInfo of an IANA name (ValueError naming the problem otherwise)."""
    return ZoneInfo(check_time_zone(name))
