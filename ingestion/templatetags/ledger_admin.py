"""The usage-event list's date drill-down, bounded by the daily rollups.

Django's own date hierarchy lists the months and days that have rows with
``SELECT DISTINCT date_trunc(...)`` over the ledger: a scan of millions of
rows on every page view. Here the first and last day come from the rollups'
(organization, day) index and the links are the calendar between them.
"""

from __future__ import annotations

import datetime

from django import template
from django.db.models import Max, Min
from django.utils import formats
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from ingestion.models import DailyUsage

register = template.Library()


@register.inclusion_tag("admin/date_hierarchy.html", takes_context=True)
def usage_date_hierarchy(context, cl):
    """Drill-down links (years → months → days) for the changelist ``cl``."""
    field = cl.date_hierarchy
    year_field, month_field, day_field = (f"{field}__{part}" for part in ("year", "month", "day"))
    year, month, day = (cl.params.get(name) for name in (year_field, month_field, day_field))
    days = DailyUsage.objects.filter(organization=context["request"].organization)

    def link(filters):
        return cl.get_query_string(filters, [f"{field}__"])

    if not (year or month or day):
        bounds = days.aggregate(first=Min("day"), last=Max("day"))
        if bounds["first"] and bounds["first"].year == bounds["last"].year:
            year = bounds["first"].year
            if bounds["first"].month == bounds["last"].month:
                month = bounds["first"].month

    if year and month and day:
        chosen = datetime.date(int(year), int(month), int(day))
        return {
            "show": True,
            "back": {
                "link": link({year_field: year, month_field: month}),
                "title": capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT")),
            },
            "choices": [{"title": capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT"))}],
        }
    bounds = days.aggregate(first=Min("day"), last=Max("day"))
    first, last = bounds["first"], bounds["last"]

    if year and month:
        found = _calendar(first, last, int(year), int(month))
        return {
            "show": True,
            "back": {"link": link({year_field: year}), "title": str(year)},
            "choices": [
                {
                    "link": link({year_field: year, month_field: month, day_field: d.day}),
                    "title": capfirst(formats.date_format(d, "MONTH_DAY_FORMAT")),
                }
                for d in found
            ],
        }
    if year:
        found = sorted({d.replace(day=1) for d in _calendar(first, last, int(year), None)})
        return {
            "show": True,
            "back": {"link": link({}), "title": _("All dates")},
            "choices": [
                {
                    "link": link({year_field: year, month_field: m.month}),
                    "title": capfirst(formats.date_format(m, "YEAR_MONTH_FORMAT")),
                }
                for m in found
            ],
        }
    return {
        "show": True,
        "back": None,
        "choices": [
            {"link": link({year_field: str(y)}), "title": str(y)}
            for y in (range(first.year, last.year + 1) if first else ())
        ],
    }


def _calendar(first, last, year: int, month: int | None) -> list[datetime.date]:
    """Every day of the year (or month) that lies between ``first`` and ``last``."""
    if first is None:
        return []
    start = datetime.date(year, month or 1, 1)
    if month is None:
        end = datetime.date(year + 1, 1, 1)
    else:
        end = datetime.date(year + (month == 12), month % 12 + 1, 1)
    start, end = max(start, first), min(end, last + datetime.timedelta(days=1))
    return [start + datetime.timedelta(days=n) for n in range((end - start).days)]
