"""The daily deployment's schedule: weekdays after the US close, New York time, NYSE holidays left out.

Prefect's cron schedules cannot skip exchange holidays, so the deployments in prefect.yaml use an
RRule with one EXDATE per NYSE holiday (from exchange_calendars). Regenerate the rules once a year:

    uv run python -m capwatch.schedule --write prefect.yaml

Past the last covered year the flow itself still does nothing on a holiday, and says so.
"""

from __future__ import annotations

import argparse
import re
from datetime import date, time
from pathlib import Path

import pandas as pd

from capwatch.calendar import nyse

TIMEZONE = "America/New_York"


def holidays(start: date, end: date) -> list[date]:
    """Weekdays in [start, end] on which the NYSE does not trade."""
    cal = nyse()
    weekdays = pd.bdate_range(start, end)
    sessions = set(
        cal.sessions_in_range(
            max(pd.Timestamp(start), cal.first_session), min(pd.Timestamp(end), cal.last_session)
        ).date
    )
    return [d.date() for d in weekdays if d.date() not in sessions]


def daily_rrule(at: time, first_year: int, last_year: int) -> str:
    """Mon-Fri at ``at`` (New York wall time) from Jan 1 of first_year, NYSE holidays excluded through last_year."""
    stamp = f"T{at.hour:02d}{at.minute:02d}00"
    exdates = ",".join(
        d.strftime("%Y%m%d") + stamp
        for d in holidays(date(first_year, 1, 1), date(last_year, 12, 31))
    )
    return (
        f"DTSTART:{first_year}0101{stamp}\nRRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR\nEXDATE:{exdates}"
    )


def render(text: str, first_year: int, last_year: int) -> str:
    """Replace each generated rrule block in prefect.yaml (between the marker comments)."""

    def block(m: re.Match) -> str:
        indent, hh, mm = m.group(1), int(m.group(2)), int(m.group(3))
        rule = daily_rrule(time(hh, mm), first_year, last_year)
        body = "\n".join(f"{indent}  {line}" for line in rule.splitlines())
        return f"{indent}# generated: nyse-rrule {hh:02d}:{mm:02d}\n{indent}rrule: |-\n{body}\n{indent}# end generated"

    pattern = re.compile(
        r"^( *)# generated: nyse-rrule (\d\d):(\d\d)\n.*?^ *# end generated", re.S | re.M
    )
    return pattern.sub(block, text)


def last_holiday_covered(rrule: str) -> date:
    """The last EXDATE of a generated rule: after it, holidays are no longer left out."""
    stamps = rrule.split("EXDATE:")[1].split()[0].split(",")
    return max(date(int(x[:4]), int(x[4:6]), int(x[6:8])) for x in stamps)


def days_left(text: str, today: date) -> int:
    """Days from ``today`` to the end of the holiday list of the first generated rule in ``text``."""
    rules = re.findall(r"rrule: \|-\n(.*?)\n *# end generated", text, re.S)
    if not rules:
        raise ValueError("no generated nyse-rrule block found")
    return min((last_holiday_covered(r) - today).days for r in rules)


# Regenerate at least this long before the holiday list runs out.
MARGIN_DAYS = 180


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", type=Path, help="prefect.yaml to update in place")
    ap.add_argument(
        "--check",
        type=Path,
        help=f"prefect.yaml: exit 1 when its holidays run out within {MARGIN_DAYS} days",
    )
    ap.add_argument("--first-year", type=int, default=2026)
    ap.add_argument("--last-year", type=int, default=2030)
    args = ap.parse_args()
    if args.check:
        left = days_left(args.check.read_text(), date.today())
        print(f"{args.check}: NYSE holidays covered for {left} more days")
        raise SystemExit(0 if left > MARGIN_DAYS else 1)
    if args.write:
        args.write.write_text(render(args.write.read_text(), args.first_year, args.last_year))
    else:
        print(daily_rrule(time(16, 30), args.first_year, args.last_year))


if __name__ == "__main__":
    main()
