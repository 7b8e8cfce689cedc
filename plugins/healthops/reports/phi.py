"""The PHI guard of emailed reports (issue: "no patient-identifying data in an email").

Three layers, each one enough to stop a leak on its own:

1. **Allow-list.** A report's context is read through a ``ReportReader``
   (``healthops.reports.reader``), which only selects the reporting-layer models the
   report declares, and of them the columns whose dbt meta says ``phi: false``
   (aggregates and codes). Asking for any other column (``mrn``, ``patient_key``,
   a free-text field) is an error before any SQL runs. The reader remembers which
   column every text value came from, so a leak can be traced to its column.
2. **Small-cell suppression** (``suppress_small_cells``), where the catalog asks for
   it: patient counts from 1 to 10 are shown as ``<11`` (CMS cell-size suppression
   policy), and a second cell is suppressed wherever one suppressed cell could be
   recovered from a total (complementary suppression).
3. **Scan before sending.** Every text value read for the report, and the rendered
   text itself (HTML, plain text, CSV), is checked against the identifiers that
   exist in ``raw.adt_messages``: MRNs, patient names (family and given name
   together) and, in text columns, birth dates. Any hit stops the report; the error
   names the column (or the rendered part) it was found in, never the value.
"""

from __future__ import annotations

import datetime as dt
import html as html_lib
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

SUPPRESSED = "<11"  # what a suppressed cell shows
SMALL_CELL_MAX = 10  # counts 1..10 are suppressed (CMS cell size policy); 0 is shown
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
_OPS = {"=", "<", "<=", ">", ">=", "in", "between"}
_TOKEN = re.compile(r"[A-Za-z0-9]+")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_US_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
_HL7_DATE = re.compile(r"\b(19\d{2}|20\d{2})(0[1-9]|1[0-2])([0-3]\d)\b")


class PhiFound(RuntimeError):
    """A rendered report holds an identifier that exists in raw: it is not sent."""

    def __init__(self, report: str, hits: list["Hit"]):
        self.report = report
        self.hits = hits
        where = "; ".join(f"{h.kind} in {h.where}" for h in hits[:10])
        super().__init__(
            f"report {report} not sent: patient identifiers found ({where}). "
            "Fix the data in those columns; nothing was e-mailed."
        )


@dataclass(frozen=True)
class Hit:
    kind: str  # "MRN" | "patient name" | "birth date"
    where: str  # "marts.fct_census_daily.unit_code" or "rendered html"


# -- small-cell suppression ------------------------------------------------------------
def is_small(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= SMALL_CELL_MAX


def suppress_table(
    rows: list[dict], columns: list[str], total: dict | None = None, derived: Mapping[str, list[str]] | None = None
) -> int:
    """Suppress, in place, the patient counts of ``rows`` from 1 to 10 in ``columns``
    (a cell becomes ``SUPPRESSED``). With a ``total`` row (whose values stay exact),
    a column with exactly one suppressed cell gets a second one, its smallest other
    non-zero cell, so the hidden value cannot be recovered as total minus the rest.
    ``derived`` names, per count column, the columns computed from it (ALOS from
    discharges): they are suppressed with it. Returns the number of cells suppressed."""
    hidden: set[tuple[int, str]] = set()
    for i, row in enumerate(rows):
        for c in columns:
            if is_small(row.get(c)):
                hidden.add((i, c))
    if total is not None:
        for c in columns:
            in_col = [i for i, _ in ((i, c) for i in range(len(rows))) if (i, c) in hidden]
            if len(in_col) == 1:
                others = [
                    (rows[i][c], i)
                    for i in range(len(rows))
                    if (i, c) not in hidden and isinstance(rows[i].get(c), int) and rows[i][c] > 0
                ]
                if others:
                    hidden.add((min(others)[1], c))
    for i, c in hidden:
        rows[i][c] = SUPPRESSED
        for d in (derived or {}).get(c, []):
            if d in rows[i]:
                rows[i][d] = SUPPRESSED
    return len(hidden)


# -- the scan --------------------------------------------------------------------------
def _tokens(text: str) -> list[str]:
    return [t.upper() for t in _TOKEN.findall(text)]


def _dates(text: str) -> set[dt.date]:
    out = set()
    for pattern, order in ((_ISO_DATE, "ymd"), (_US_DATE, "mdy"), (_HL7_DATE, "ymd")):
        for m in pattern.finditer(text):
            a, b, c = (int(x) for x in m.groups())
            y, mo, d = (a, b, c) if order == "ymd" else (c, a, b)
            try:
                out.add(dt.date(y, mo, d))
            except ValueError:
                pass
    return out


def rendered_texts(rendered) -> dict[str, str]:
    """The parts of a rendered report a reader sees, as text: HTML (tags dropped),
    the plain-text part, the subject and any text attachment (CSV)."""
    html_text = html_lib.unescape(
        re.sub(r"<[^>]+>", " ", re.sub(r"(?is)<(style|script)\b.*?</\1>", " ", rendered.html))
    )
    texts = {"rendered subject": rendered.subject, "rendered html": html_text, "rendered text": rendered.text}
    for name, (data, mime) in (getattr(rendered, "attachments", None) or {}).items():
        if mime.startswith("text/"):
            texts[f"attachment {name}"] = data.decode("utf-8", "replace")
    return texts


def scan(conn, strings: Iterable[tuple[str, str]], texts: Mapping[str, str]) -> list[Hit]:
    """Identifiers of ``raw.adt_messages`` in the report: in the text values read for
    it (``strings``: (where, value)) and in its rendered ``texts`` ({part: text}).
    MRNs anywhere; a patient's family and given name together (in one value, or next
    to each other in rendered text); birth dates only in text values (rendered
    reports show census dates, which a newborn's birth date may equal)."""
    if conn.execute("select to_regclass('raw.adt_messages')").fetchone()[0] is None:
        return []
    sources: list[tuple[str, str, bool]] = [(w, v, True) for w, v in strings]
    sources += [(w, v, False) for w, v in texts.items()]
    token_lists = [(w, _tokens(v), is_value, v) for w, v, is_value in sources]
    all_tokens = sorted({t for _, toks, _, _ in token_lists for t in toks})
    if not all_tokens:
        return []
    mrns = {
        m.upper()
        for (m,) in conn.execute("select distinct mrn from raw.adt_messages where upper(mrn) = any(%s)", (all_tokens,))
    }
    names: dict[str, set[str]] = {}
    for family, given in conn.execute(
        """select distinct upper(split_part(patient_name, '^', 1)), upper(split_part(patient_name, '^', 2))
               from raw.adt_messages where upper(split_part(patient_name, '^', 1)) = any(%s)""",
        (all_tokens,),
    ):
        if family and given:
            names.setdefault(family, set()).update(_tokens(given))
    value_dates = sorted({d for w, v, is_value in sources if is_value for d in _dates(v)})
    births = set()
    if value_dates:
        births = {
            d
            for (d,) in conn.execute(
                "select distinct birth_date from raw.adt_messages where birth_date = any(%s)", (value_dates,)
            )
        }

    hits: list[Hit] = []
    seen = set()

    def add(kind, where):
        if (kind, where) not in seen:
            seen.add((kind, where))
            hits.append(Hit(kind, where))

    for where, toks, is_value, raw_value in token_lists:
        if mrns.intersection(toks):
            add("MRN", where)
        for i, t in enumerate(toks):
            given = names.get(t)
            if not given:
                continue
            if is_value and given.intersection(toks):
                add("patient name", where)
            elif not is_value and ((i + 1 < len(toks) and toks[i + 1] in given) or (i > 0 and toks[i - 1] in given)):
                add("patient name", where)
        if is_value and births and births.intersection(_dates(raw_value)):
            add("birth date", where)
    return hits


def guard(conn, report: str, reader, rendered) -> None:
    """Raise ``PhiFound`` when the scan finds anything; the report must not go out.
    ``reader``: the ``ReportReader`` the report was built with (its ``strings``), or None."""
    hits = scan(conn, reader.strings if reader else [], rendered_texts(rendered))
    if hits:
        raise PhiFound(report, hits)
