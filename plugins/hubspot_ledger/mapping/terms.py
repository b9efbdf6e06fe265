"""Recognition from HubSpot's recurring terms (issue 14, `--recognition hubspot-terms`).

A line item with a term (`hs_recurring_billing_period`, an ISO-8601 duration `PnYnMnD` or
`PnW`) is a service delivered over that term: its obligation is recognized `ratable` over the
service period from its billing start date (`hs_recurring_billing_start_date`, else the deal's
close date) to the day before the term has passed: start + term − 1 day. A 12-month line
starting 2026-01-01 runs 2026-01-01..2026-12-31; a 3-month line starting 2026-01-15 runs
2026-01-15..2026-04-14. Months and years are calendar months (a month from 31 January ends on
27 February: 28 February is the first day of the next period). A line without a term (one-off,
or billed "until cancelled") stays `immediate`.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

from hubspot_ledger.extract.models import BadValue, LineItem
from hubspot_ledger.load.records import RecognitionStrategy

TERM_PROPERTY = "hs_recurring_billing_period"
START_PROPERTY = "hs_recurring_billing_start_date"
# HubSpot's two forms: years, months and days in that order (each optional), or weeks alone.
_TERM = re.compile(r"P(?:(?P<y>\d{1,4})Y)?(?:(?P<m>\d{1,4})M)?(?:(?P<d>\d{1,5})D)?"
                   r"|P(?P<w>\d{1,4})W", re.IGNORECASE)
# A service period beyond this many years is a typing slip, not a contract.
MAX_YEARS = 100


@dataclass(frozen=True, slots=True)
class Recognized:
    strategy: RecognitionStrategy
    service_start: dt.date | None = None
    service_end: dt.date | None = None


IMMEDIATE = Recognized(RecognitionStrategy.IMMEDIATE)


@dataclass(frozen=True, slots=True)
class Term:
    months: int  # years count as 12 months
    days: int  # weeks count as 7 days


def parse_term(text: str) -> Term | None:
    """`P12M` → 12 months, `P1Y6M`, `P2W`, `P30D`; None when it is not such a term or is
    zero long."""
    match = _TERM.fullmatch(text.strip())
    if match is None or not any(match.group(g) for g in "ymdw"):
        return None
    years, months, days, weeks = (int(match.group(g) or 0) for g in "ymdw")
    term = Term(months=12 * years + months, days=days + 7 * weeks)
    if term == Term(0, 0) or term.months / 12 + term.days / 365 > MAX_YEARS:
        return None
    return term


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` calendar months later, or that month's last day when it is
    shorter (31 January + 1 month = 28 February)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return day.replace(year=year, month=month + 1,
                       day=min(day.day, calendar.monthrange(year, month + 1)[1]))


def service_period(start: dt.date, term: Term) -> tuple[dt.date, dt.date]:
    """start .. start + term − 1 day (the last day the service is delivered)."""
    end = add_months(start, term.months) + dt.timedelta(days=term.days - 1)
    return start, end


def recognized(line: LineItem, close_date: dt.date) -> Recognized:
    """How the line's obligation is recognized; BadValue (naming the line) for a term or start
    date HubSpot holds in a form that is not one."""
    raw = line.text(TERM_PROPERTY)
    if raw is None:
        return IMMEDIATE
    term = parse_term(raw)
    if term is None:
        raise BadValue(line, TERM_PROPERTY, raw,
                       "is not a term such as P12M (12 months), P1Y, P6W or P30D",
                       "set the line's term again in HubSpot")
    start = line.date(START_PROPERTY) or close_date
    first, last = service_period(start, term)
    return Recognized(RecognitionStrategy.RATABLE, first, last)
