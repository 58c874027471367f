"""Times shown to people: local wall time in the org's zone, Norwegian and English formats."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest

from krise_tui.timefmt import (
    DEFAULT_TIMEZONE,
    check_timezone,
    format_date,
    format_datetime,
    format_time,
    iso_local,
    local_time,
    zone,
)

WINTER = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # CET, UTC+1
SUMMER = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)  # CEST, UTC+2


def test_norwegian_and_english_formats() -> None:
    assert format_datetime(WINTER) == "27.11.2026 kl. 11:00"
    assert format_datetime(WINTER, "Europe/Oslo", "nb") == "27.11.2026 kl. 11:00"
    assert format_datetime(WINTER, "Europe/Oslo", "en") == "27 Nov 2026, 11:00"
    assert format_datetime(WINTER, "Europe/Oslo", "en-GB") == "27 Nov 2026, 11:00"
    assert format_date(WINTER, lang="en") == "27 Nov 2026"
    assert format_date(WINTER) == "27.11.2026"
    assert format_time(WINTER) == "11:00"
    # South Sami and nynorsk readers in Norway get the Norwegian numeric formats.
    assert format_datetime(WINTER, lang="sma") == "27.11.2026 kl. 11:00"
    assert format_datetime(WINTER, lang="nn") == "27.11.2026 kl. 11:00"


def test_single_digit_days_and_months() -> None:
    early = datetime(2027, 1, 5, 7, 3, tzinfo=UTC)
    assert format_datetime(early) == "05.01.2027 kl. 08:03"
    assert format_datetime(early, lang="en") == "5 Jan 2027, 08:03"


def test_summer_time_and_its_changes() -> None:
    assert format_datetime(SUMMER) == "01.07.2026 kl. 12:00"
    assert iso_local(SUMMER) == "2026-07-01T12:00:00+02:00"
    assert iso_local(WINTER) == "2026-11-27T11:00:00+01:00"
    # Summer time starts 29 March 2026 at 01:00 UTC: 02:00 local becomes 03:00.
    spring = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert format_time(spring - timedelta(minutes=1)) == "01:59"
    assert format_time(spring) == "03:00"
    # It ends 25 October 2026 at 01:00 UTC: 02:30 local happens twice.
    autumn = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert iso_local(autumn) == "2026-10-25T02:30:00+02:00"
    assert iso_local(autumn + timedelta(hours=1)) == "2026-10-25T02:30:00+01:00"


def test_the_date_is_the_local_one() -> None:
    late = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert format_datetime(late) == "01.01.2027 kl. 00:30"
    assert format_datetime(late, "UTC") == "31.12.2026 kl. 23:30"


def test_any_aware_input_and_any_zone() -> None:
    new_york = datetime(2026, 11, 27, 5, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert format_datetime(new_york) == "27.11.2026 kl. 11:00"
    assert format_time(WINTER, "America/St_Johns") == "06:30"
    assert format_time(WINTER, timezone(timedelta(hours=3))) == "13:00"
    assert local_time(WINTER).utcoffset() == timedelta(hours=1)
    assert iso_local(WINTER.replace(microsecond=123456)) == "2026-11-27T11:00:00+01:00"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_datetime(datetime(2026, 11, 27, 10, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        local_time(datetime(2026, 11, 27, 10, 0))


@pytest.mark.parametrize(
    "name", ["Europe/Osloo", "", " Europe/Oslo", "/etc/localtime", "../../etc/passwd", "Oslo"]
)
def test_unknown_zones_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not an IANA time zone"):
        check_timezone(name)
    with pytest.raises(ValueError, match="not an IANA time zone"):
        format_time(WINTER, name)


def test_known_zones() -> None:
    assert DEFAULT_TIMEZONE == "Europe/Oslo"
    for name in ("Europe/Oslo", "UTC", "Arctic/Longyearbyen", "America/St_Johns"):
        assert check_timezone(name) == name
        assert zone(name).key == name


def test_the_module_is_a_leaf_that_imports_only_the_standard_library() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import krise_tui.timefmt\n"
        "new = set(sys.modules) - before\n"
        "ours = sorted(m for m in new if m.split('.')[0] == 'krise_tui')\n"
        "installed = sorted(m for m in new if 'site-packages' in\n"
        "                   str(getattr(sys.modules[m], '__file__', '')))\n"
        "print(','.join(ours), ','.join(installed), sep='|')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "krise_tui,krise_tui.timefmt|"
