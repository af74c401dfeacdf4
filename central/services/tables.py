"""A report's table, downloadable as CSV or XLSX: the same columns and rows the page shows.

Text cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``) are
written as text in both formats; numbers stay numbers, dates stay dates. Control characters
(a kiosk's note may hold one) have no place in an XLSX file's XML: they are left out of
every XLSX cell, heading and sheet name, so no stored text can make a download fail.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

CSV_MEDIA = "text/csv; charset=utf-8"
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FORMATS = {"csv": CSV_MEDIA, "xlsx": XLSX_MEDIA}
#: what XML 1.0 (so XLSX) cannot hold: the C0 controls but tab, newline and return (as openpyxl's
#: ILLEGAL_CHARACTERS_RE, which raises on them), and lone surrogates
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def xml_text(value: object) -> str:
    """Text an XLSX cell can hold (control characters left out)."""
    return _NOT_IN_XML.sub("", "" if value is None else str(value))


def safe_text(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in _FORMULA_START else text


@dataclass
class ReportTable:
    """``title`` names the sheet and the file; ``columns`` are the headings (already in the
    reader's language); each row holds numbers, dates, datetimes (local) or text."""

    title: str
    columns: Sequence[str]
    rows: list[Sequence[Any]] = field(default_factory=list)

    def csv(self) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow([safe_text(c) for c in self.columns])
        for row in self.rows:
            writer.writerow([_csv_cell(v) for v in row])
        # with a byte-order mark: Excel then reads the Chinese names as UTF-8
        return ("\ufeff" + buffer.getvalue()).encode("utf-8")

    def xlsx(self) -> bytes:
        from openpyxl import Workbook
        from openpyxl.cell.cell import TYPE_STRING
        from openpyxl.styles import Font
        from openpyxl.utils import get_column_letter
        from openpyxl.worksheet.worksheet import Worksheet

        book = Workbook(write_only=False)
        sheet = book.active
        assert isinstance(sheet, Worksheet)  # a new workbook's one sheet (openpyxl types .active as optional)
        sheet.title = _sheet_title(self.title)
        sheet.append([xml_text(c) for c in self.columns])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        # cell by cell: sheet[sheet.max_row] after each append counts every cell (quadratic)
        for number, row in enumerate(self.rows, start=2):
            for index, value in enumerate(row, start=1):
                cell = sheet.cell(number, index, _xlsx_cell(value))
                if isinstance(cell.value, str):  # text, never a formula
                    cell.data_type = TYPE_STRING
        sheet.freeze_panes = "A2"
        for index, column in enumerate(self.columns, start=1):
            width = max([len(str(column))] + [len(str(r[index - 1])) for r in self.rows[:200] if len(r) >= index])
            sheet.column_dimensions[get_column_letter(index)].width = min(max(width + 2, 8), 60)
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()

    def render(self, form: str) -> tuple[bytes, str]:
        """The table in ``form`` ("csv" or "xlsx") and its media type."""
        return (self.xlsx() if form == "xlsx" else self.csv()), FORMATS[form]


def _csv_cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, (date, int, float)) and not isinstance(value, bool):
        return str(value)
    return safe_text(value)


def _xlsx_cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)  # spreadsheets have no time zones: the local time as shown
    if isinstance(value, (date, int, float)) or value is None:
        return value
    return xml_text(value)


def _sheet_title(title: str) -> str:
    cleaned = "".join(" " if ch in "[]:*?/\\" else ch for ch in xml_text(title)).strip()
    return (cleaned or "report")[:31]
