"""Time expressions in questions -> an inclusive date range, relative to AKKO_AS_OF.

One regex per form, each with a small function computing the range; the first (leftmost, longest)
match wins and its span is removed from the question so later stages do not read "week" in
"last week" as a weekly grain. Conventions (also in the catalog's business terms):
- "last week" = the previous full ISO week (Monday-Sunday) before AS_OF;
- "last N weeks/months" = N full weeks/calendar months before the current one;
- "last/past N days" = the N days ending at AS_OF (inclusive);
- a bare month name = its most recent occurrence starting on or before AS_OF.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
MONTHS["sept"] = 9
_MONTH = r"(?P<{}>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a": 1, "an": 1}
_N = r"(?P<n>\d{1,3}|" + "|".join(NUMBER_WORDS) + r")"
_LAST = r"(?:in\s+the\s+|over\s+the\s+|during\s+the\s+|for\s+the\s+|within\s+the\s+|the\s+)?(?:last|past|previous|prior|recent)"
# Dates: 2026-11-05, 5 November 2026, November 5(th)(, 2026), 5 Nov.
_DATE = (
    r"(?:(?P<{p}iso>\d{{4}}-\d{{2}}-\d{{2}})"
    r"|(?P<{p}d1>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH.format("{p}m1") + r"(?:,?\s+(?P<{p}y1>\d{{4}}))?"
    r"|" + _MONTH.format("{p}m2") + r"\s+(?P<{p}d2>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<{p}y2>\d{{4}}))?)"
)


class TimeError(ValueError):
    """A time expression the parser recognises but cannot turn into a valid range."""


@dataclass(frozen=True)
class TimeRange:
    start: dt.date
    end: dt.date  # inclusive
    label: str

    def describe(self) -> str:
        span = self.start.isoformat() if self.start == self.end else f"{self.start.isoformat()} to {self.end.isoformat()}"
        return f"{self.label} ({span})" if self.label else span


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _month_start(day: dt.date, back: int = 0) -> dt.date:
    index = day.year * 12 + day.month - 1 - back
    return dt.date(index // 12, index % 12 + 1, 1)


def _month_end(start: dt.date) -> dt.date:
    return dt.date(start.year, start.month, calendar.monthrange(start.year, start.month)[1])


def _n(match: re.Match[str]) -> int:
    raw = match.group("n")
    value = NUMBER_WORDS[raw] if raw in NUMBER_WORDS else int(raw)
    if value < 1 or value > 400:
        raise TimeError(f"'{match.group(0)}' is out of range: use 1 to 400")
    return value


def _date(match: re.Match[str], prefix: str, as_of: dt.date) -> dt.date:
    groups = {k[len(prefix):]: v for k, v in match.groupdict().items() if k.startswith(prefix) and v}
    try:
        if "iso" in groups:
            return dt.date.fromisoformat(groups["iso"])
        month = MONTHS[(groups.get("m1") or groups["m2"]).lower()]
        day = int(groups.get("d1") or groups["d2"])
        year = groups.get("y1") or groups.get("y2")
        if year:
            return dt.date(int(year), month, day)
        candidate = dt.date(as_of.year, month, day)
        return candidate if candidate <= as_of else dt.date(as_of.year - 1, month, day)
    except ValueError:
        raise TimeError(f"'{match.group(0).strip()}' is not a valid date") from None


def _named_month(match: re.Match[str], as_of: dt.date) -> TimeRange:
    month = MONTHS[match.group("m").lower()]
    year = int(match.group("y")) if match.group("y") else (as_of.year if month <= as_of.month else as_of.year - 1)
    start = dt.date(year, month, 1)
    return TimeRange(start, _month_end(start), f"in {calendar.month_name[month]} {year}")


Rule = tuple[re.Pattern[str], Callable[[re.Match[str], dt.date], TimeRange]]

_RULES: list[Rule] = [
    (re.compile(r"\bbetween\s+" + _DATE.format(p="a") + r"\s+and\s+" + _DATE.format(p="b")),
     lambda m, a: TimeRange(_date(m, "a", a), _date(m, "b", a), "")),
    (re.compile(r"\bfrom\s+" + _DATE.format(p="a") + r"\s+(?:to|until|till|through)\s+" + _DATE.format(p="b")),
     lambda m, a: TimeRange(_date(m, "a", a), _date(m, "b", a), "")),
    (re.compile(r"\bsince\s+" + _DATE.format(p="a")), lambda m, a: TimeRange(_date(m, "a", a), a, "since " + _date(m, "a", a).isoformat())),
    (re.compile(r"\bsince\s+(?:the\s+start\s+of\s+|the\s+beginning\s+of\s+)?" + _MONTH.format("m") + r"(?:\s+(?P<y>\d{4}))?"),
     lambda m, a: TimeRange(_named_month(m, a).start, a, "since " + _named_month(m, a).label[3:])),
    (re.compile(r"\b(?:on|for)\s+" + _DATE.format(p="a")), lambda m, a: TimeRange(_date(m, "a", a), _date(m, "a", a), "on")),
    (re.compile(r"\b(?:after)\s+" + _DATE.format(p="a")),
     lambda m, a: TimeRange(_date(m, "a", a) + dt.timedelta(days=1), a, "after " + _date(m, "a", a).isoformat())),
    (re.compile(r"\b(?:before)\s+" + _DATE.format(p="a")),
     lambda m, a: TimeRange(dt.date(1970, 1, 1), _date(m, "a", a) - dt.timedelta(days=1), "before " + _date(m, "a", a).isoformat())),
    (re.compile(r"\btoday\b"), lambda m, a: TimeRange(a, a, "today")),
    (re.compile(r"\byesterday\b"), lambda m, a: TimeRange(a - dt.timedelta(days=1), a - dt.timedelta(days=1), "yesterday")),
    (re.compile(r"\b(?:this|the\s+current|current)\s+week\b|\bweek\s+to\s+date\b|\bwtd\b"),
     lambda m, a: TimeRange(_monday(a), a, "this week")),
    (re.compile(r"\b(?:this|the\s+current|current)\s+month\b|\bmonth\s+to\s+date\b|\bmtd\b"),
     lambda m, a: TimeRange(_month_start(a), a, "this month")),
    (re.compile(r"\b(?:this|the\s+current|current)\s+year\b|\byear\s+to\s+date\b|\bytd\b"),
     lambda m, a: TimeRange(dt.date(a.year, 1, 1), a, "this year")),
    (re.compile(_LAST + r"\s+" + _N + r"\s+days?\b"),
     lambda m, a: TimeRange(a - dt.timedelta(days=_n(m) - 1), a, f"in the last {_n(m)} days")),
    (re.compile(_LAST + r"\s+" + _N + r"\s+(?:full\s+)?weeks?\b"),
     lambda m, a: TimeRange(_monday(a) - dt.timedelta(weeks=_n(m)), _monday(a) - dt.timedelta(days=1), f"in the last {_n(m)} full weeks")),
    (re.compile(_LAST + r"\s+" + _N + r"\s+(?:full\s+)?months?\b"),
     lambda m, a: TimeRange(_month_start(a, _n(m)), _month_start(a) - dt.timedelta(days=1), f"in the last {_n(m)} full months")),
    # "past week" reads as the last 7 days, "last week" as the previous ISO week (DESIGN.md).
    (re.compile(r"\b(?:in\s+the\s+|over\s+the\s+|during\s+the\s+)?past\s+week\b"),
     lambda m, a: TimeRange(a - dt.timedelta(days=6), a, "in the past 7 days")),
    (re.compile(r"\b(?:the\s+)?(?:last|previous|prior)\s+(?:full\s+|calendar\s+|iso\s+)?week\b|\ba\s+week\s+ago\b"),
     lambda m, a: TimeRange(_monday(a) - dt.timedelta(weeks=1), _monday(a) - dt.timedelta(days=1), "last week")),
    (re.compile(r"\b(?:the\s+)?(?:last|previous|prior|past)\s+(?:full\s+|calendar\s+)?month\b"),
     lambda m, a: TimeRange(_month_start(a, 1), _month_start(a) - dt.timedelta(days=1), "last month")),
    (re.compile(r"\b(?:the\s+)?(?:last|previous|prior|past)\s+year\b"),
     lambda m, a: TimeRange(dt.date(a.year - 1, 1, 1), dt.date(a.year - 1, 12, 31), "last year")),
    (re.compile(r"\b(?:in|during|for|over|of|throughout)\s+(?:the\s+month\s+of\s+)?" + _MONTH.format("m") + r"(?:\s+(?P<y>\d{4}))?\b"),
     _named_month),
    (re.compile(r"\b" + _MONTH.format("m") + r"\s+(?P<y>\d{4})\b"), _named_month),
]


def find_time_range(text: str, as_of: dt.date) -> tuple[TimeRange | None, tuple[int, int] | None]:
    """The time range the (lower-cased) question names, and its span; (None, None) when none."""
    best: tuple[re.Match[str], Callable[[re.Match[str], dt.date], TimeRange]] | None = None
    for pattern, build in _RULES:
        match = pattern.search(text)
        if match and (best is None or match.start() < best[0].start()
                      or (match.start() == best[0].start() and match.end() > best[0].end())):
            best = (match, build)
    if best is None:
        return None, None
    match, build = best
    time_range = build(match, as_of)
    if time_range.label == "on":
        time_range = TimeRange(time_range.start, time_range.end, "on " + time_range.start.isoformat())
    if time_range.start > time_range.end:
        raise TimeError(f"'{match.group(0).strip()}' is an empty range: its start {time_range.start} is after its end {time_range.end}")
    return time_range, match.span()
