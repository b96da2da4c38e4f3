"""Dashboard tables: one column list drives the screen (rounded, linked) and the CSV (exact).

Rows are plain dicts of snapshot values (decimal strings or ``Decimal``, USD; ratios as
fractions of 1); a row may carry ``_links`` ({column key: url}) and ``_sub`` (a second
line under a cell).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.http import HttpResponse
from django.utils.text import slugify

from economics.formatting import DASH, count, decimal_text, money, percent

BAND_LABELS = {
    "healthy": ("Healthy", "success"),
    "watch": ("Watch", "info"),
    "at_risk": ("At risk", "warning"),
    "margin_negative": ("Margin-negative", "danger"),
}
PROFITABILITY_LABELS = {
    "profitable": ("Profitable", "success"),
    "break_even": ("Break-even", "info"),
    "unprofitable": ("Unprofitable", "danger"),
}
# Characters that make a spreadsheet read a text cell as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    """``kind``: text, int, money, money_change, unit_cost (six places), percent (of a
    fraction), percent_change, band, profitability, flag or list."""

    key: str
    label: str
    kind: str = "text"
    sort: str | None = None
    screen: bool = True
    csv: bool = True
    wrap: bool = False  # long text that may break over lines on screen

    @property
    def numeric(self) -> bool:
        return self.kind in {
            "int", "money", "money_change", "unit_cost", "percent", "percent_change",
        }  # fmt: skip


@dataclass(frozen=True)
class Cell:
    text: str
    href: str | None = None
    sub: str | None = None
    label: str | None = None  # an unfold label variant: the text is shown as a badge
    numeric: bool = False
    key: str = ""
    wrap: bool = False


def screen_text(column: Column, value: Any) -> str:
    """A value as people read it: money to cents, unit costs to six places, % to one."""
    if value is None or value == "":
        return DASH
    match column.kind:
        case "int":
            return count(value)
        case "money":
            return money(value)
        case "money_change":
            return money(value, signed=True)
        case "unit_cost":
            return money(value, places=6)
        case "percent":
            return percent(value)
        case "percent_change":
            return percent(value, signed=True)
        case "band":
            return BAND_LABELS.get(value, (value, None))[0]
        case "profitability":
            return PROFITABILITY_LABELS.get(value, (value, None))[0]
        case "flag":
            return "Yes" if value else "No"
        case "list":
            return ", ".join(str(item) for item in value) or DASH
    return str(value)


def csv_text(column: Column, value: Any) -> str:
    """A value exactly: decimals as stored (plain notation), ratios as fractions of 1."""
    if value is None:
        return ""
    match column.kind:
        case "money" | "money_change" | "unit_cost":
            return decimal_text(value)
        case "percent" | "percent_change":
            return decimal_text(value, min_places=0)
        case "int":
            return str(value)
        case "flag":
            return "true" if value else "false"
        case "list":
            return "; ".join(str(item) for item in value)
    text = str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _label(column: Column, value: Any) -> str | None:
    if column.kind == "band":
        return BAND_LABELS.get(value, (None, None))[1]
    if column.kind == "profitability":
        return PROFITABILITY_LABELS.get(value, (None, None))[1]
    if column.kind == "flag" and value:
        return "danger"
    return None


@dataclass
class Table:
    """Columns and rows; ``screen_rows`` and ``csv_response`` render them."""

    columns: Sequence[Column]
    rows: Iterable[Mapping[str, Any]]

    @property
    def screen_columns(self) -> list[Column]:
        return [column for column in self.columns if column.screen]

    def screen_rows(self) -> list[list[Cell]]:
        result = []
        for row in self.rows:
            links, subs = row.get("_links", {}), row.get("_sub", {})
            result.append(
                [
                    Cell(
                        text=screen_text(column, row.get(column.key)),
                        href=links.get(column.key),
                        sub=subs.get(column.key),
                        label=_label(column, row.get(column.key)),
                        numeric=column.numeric,
                        key=column.key,
                        wrap=column.wrap or column.kind == "list",
                    )
                    for column in self.screen_columns
                ]
            )
        return result

    def csv_response(self, filename: str) -> HttpResponse:
        """Every row, every CSV column, exact, with a header row of column keys."""
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        columns = [column for column in self.columns if column.csv]
        writer = csv.writer(response)
        writer.writerow([column.key for column in columns])
        for row in self.rows:
            writer.writerow([csv_text(column, row.get(column.key)) for column in columns])
        return response


def csv_filename(page: str, period_slug: str, *parts: str) -> str:
    """``economics-<page>-<period>[-<part>…].csv``."""
    return "-".join(["economics", page, period_slug, *(slugify(part) for part in parts)]) + ".csv"
