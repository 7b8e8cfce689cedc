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
   report itself (subject, HTML, plain text, the PDF's text, CSV), is checked against
   the identifiers of patients: those of ``raw.adt_messages`` and of the PID segment
   of rejected messages (``raw.rejected``: a patient whose only message was refused is
   still a patient). MRNs, patient names (family and given name together) and, in text
   values, birth dates. Any hit stops the report; the error names the column (or the
   rendered part: ``attachment <stem>.pdf`` for the PDF) it was found in, never the value.

The scan never reads raw itself: it sends the report's tokens and dates to
``reporting.phi_identifier_matches`` (migration ``0005_phi_guard``), a SECURITY DEFINER
function that answers which of them are identifiers, in one round trip; the reporting
step's role (``healthops_reporter``) may not read ``raw``. A warehouse with no patient
data (no function, no ``raw.adt_messages``) passes everything, as before; one with raw
data but without the function, or a PDF that cannot be read, stops the report
(``PhiScanFailed``): a scan that cannot be done is not a clean scan.

**What counts as an MRN in text.** Words are maximal runs of ASCII letters and digits.
The MRN candidates of a text are:

- every word (``#004512``, ``MRN:004512``, ``MRN-004512`` and ``MRN 004512`` all give
  the word ``004512``);
- every run of 2 to 6 words joined by single ``-``, ``.`` or ``/``, whole, as written
  (``A-1234-56`` in ``bed A-1234-56/B`` or ``(A-1234-56)``): an MRN stored with
  hyphens, dots or slashes is found when the text shows it whole;
- after a prefix ``MRN``, ``MR`` or ``MRNO`` (any case) glued to it or joined by ``:``,
  ``#``, ``-``, ``.``, ``/`` or spaces, the identifier that follows
  (``MRN004512`` gives ``004512``).

A candidate matches a stored MRN only when equal to it (case-insensitive): never a
part of a word, so a stored ``4512`` is not found in ``004512`` or ``A4512``, and a
stored ``A-1234-56`` is not found as ``A123456`` or ``A 1234 56`` (different text,
and matching such spellings would flag every run of numbers). Names are matched on
words: a family name as one word next to one of the patient's given-name words
(rendered text), or both anywhere in one value (a hyphenated family name as written).

**Alerts** (``healthops.alerts``) must always go out, so a hit there redacts instead
of stopping: ``redact`` replaces each identifier the warehouse knows with
``[redacted]`` (the run's own date is kept even if it is a birth date). When the
warehouse cannot be asked (down, or without the function), the alert's error text is
redacted by look alone (``redact_likely_identifiers``): words joined by ``-./`` with 5
or more digits (not an ISO date or IPv4 address), HL7 components (anything joined by
``^``) and whatever an error quotes (``'...'``, ``"..."``, first to last quote of a line).
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
# words joined by single '-', '.' or '/': "A-1234-56", "MRN-004512", "2026-11-02"
_CHAIN = re.compile(r"[A-Za-z0-9]+(?:[-./][A-Za-z0-9]+)*")
_MAX_PIECES = 6  # the longest run of joined words tried as one MRN
# an MRN written after a prefix glued to it or joined by ':', '#', '-', '.', '/' or spaces
_PREFIXED = re.compile(
    r"(?<![A-Za-z0-9])(?:MRN|MR|MRNO)(?:\s*[:#.\-/]\s*|\s*#?)(?P<id>[A-Za-z]?\d[A-Za-z0-9]*(?:[-./][A-Za-z0-9]+)*)",
    re.IGNORECASE,
)
_FUNCTION = "reporting.phi_identifier_matches"
REDACTED = "[redacted]"
# Without a warehouse (alerts), what looks like an identifier (see the module docstring)
_NOT_AN_ID = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,3}(?:\.\d{1,3}){3}")  # an ISO date, an IPv4 address
_HL7_COMPONENTS = re.compile(r"[^\s|^~'\"]*\^[^\s|~'\"]*")
_QUOTED = re.compile(r"'([^\n]*)'|\"([^\n]*)\"")  # greedy: "'O'BRIEN WARD'" is one quoted value
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


class PhiScanFailed(RuntimeError):
    """The scan could not be done (a PDF it cannot read, a warehouse without the scan's
    function): the report is not sent, as if something had been found."""


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
    """The words of ``text`` in order (maximal runs of ASCII letters and digits), upper case."""
    return [t.upper() for t in _TOKEN.findall(text)]


def _candidate_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, candidate) of every MRN candidate of ``text`` (the rule is in the
    module docstring): each word; each run of 2 to ``_MAX_PIECES`` words joined by single
    ``-``, ``.`` or ``/``; and a word or run with an MRN prefix, without it."""
    out: list[tuple[int, int, str]] = []
    for chain in _CHAIN.finditer(text):
        words = list(_TOKEN.finditer(chain.group()))
        base = chain.start()
        for i, first in enumerate(words):
            for j in range(i, min(i + _MAX_PIECES, len(words))):
                start, end = base + first.start(), base + words[j].end()
                out.append((start, end, text[start:end].upper()))
    for m in _PREFIXED.finditer(text):
        out.append((m.start("id"), m.end("id"), m.group("id").upper()))
    return out


def _candidates(text: str) -> set[str]:
    return {c for _, _, c in _candidate_spans(text)}


def _date_spans(text: str) -> list[tuple[int, int, dt.date]]:
    out = []
    for pattern, order in ((_ISO_DATE, "ymd"), (_US_DATE, "mdy"), (_HL7_DATE, "ymd")):
        for m in pattern.finditer(text):
            a, b, c = (int(x) for x in m.groups())
            y, mo, d = (a, b, c) if order == "ymd" else (c, a, b)
            try:
                out.append((m.start(), m.end(), dt.date(y, mo, d)))
            except ValueError:
                pass
    return out


def _dates(text: str) -> set[dt.date]:
    return {d for _, _, d in _date_spans(text)}


def pdf_text(pdf: bytes) -> str:
    """The text of a PDF, page after page (pypdf: pure Python, no system library)."""
    import io

    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)


def rendered_texts(rendered) -> dict[str, str]:
    """The parts of a rendered report a reader sees, as text: HTML (tags dropped),
    the plain-text part, the subject, the PDF's text and any text attachment (CSV).
    A PDF that cannot be read cannot be scanned: ``PhiScanFailed``, nothing is sent.
    Images (the charts) are not read: their labels are values read for the report,
    which the scan sees as such."""
    html_text = html_lib.unescape(
        re.sub(r"<[^>]+>", " ", re.sub(r"(?is)<(style|script)\b.*?</\1>", " ", rendered.html))
    )
    texts = {"rendered subject": rendered.subject, "rendered html": html_text, "rendered text": rendered.text}
    if getattr(rendered, "pdf", None):
        name = f"{rendered.filename_stem}.pdf"
        try:
            texts[f"attachment {name}"] = pdf_text(rendered.pdf)
        except Exception as exc:
            raise PhiScanFailed(f"the PDF {name} could not be read for the PHI scan ({type(exc).__name__})") from exc
    for name, (data, mime) in (getattr(rendered, "attachments", None) or {}).items():
        if mime.startswith("text/"):
            texts[f"attachment {name}"] = data.decode("utf-8", "replace")
        elif mime == "application/pdf":
            try:
                texts[f"attachment {name}"] = pdf_text(data)
            except Exception as exc:
                raise PhiScanFailed(f"the PDF {name} could not be read for the PHI scan") from exc
    return texts


@dataclass
class Identifiers:
    """What the warehouse said of the tokens and dates it was asked about."""

    mrns: set[str]
    names: dict[str, set[str]]  # family -> given-name tokens (both among the tokens asked)
    births: set[dt.date]


def identifiers(conn, tokens: Iterable[str], dates: Iterable[dt.date]) -> Identifiers | None:
    """Ask ``reporting.phi_identifier_matches`` (migration 0005, SECURITY DEFINER: the
    caller need not read raw) which of ``tokens`` and ``dates`` are identifiers, in one
    round trip. None when the warehouse has no patient data at all (no function and no
    ``raw.adt_messages``: the one case the scan always passed); a warehouse with raw data
    but without the function cannot be scanned: ``PhiScanFailed``."""
    tokens, dates = sorted({t.upper() for t in tokens if t}), sorted(set(dates))
    if conn.execute("select to_regprocedure(%s)", (_FUNCTION + "(text[], date[])",)).fetchone()[0] is None:
        if conn.execute("select to_regclass('raw.adt_messages')").fetchone()[0] is None:
            return None
        raise PhiScanFailed(f"{_FUNCTION} is missing: run `healthops warehouse migrate`")
    found = Identifiers(set(), {}, set())
    if not tokens and not dates:
        return found
    for kind, value, given in conn.execute(
        f"select kind, value, given from {_FUNCTION}(%s::text[], %s::date[])", (tokens, dates)
    ):
        if kind == "MRN":
            found.mrns.add(value)
        elif kind == "name":
            found.names.setdefault(value, set()).add(given)
        elif kind == "birth date":
            found.births.add(dt.date.fromisoformat(value))
    return found


def scan(conn, strings: Iterable[tuple[str, str]], texts: Mapping[str, str]) -> list[Hit]:
    """Identifiers of patients (``raw.adt_messages`` and rejected messages, through
    ``identifiers``) in the report: in the text values read for it (``strings``:
    (where, value)) and in its rendered ``texts`` ({part: text}). MRNs anywhere (the
    candidates of the module docstring); a patient's family and given name together (in
    one value, or next to each other in rendered text); birth dates only in text values
    (rendered reports show census dates, which a newborn's birth date may equal)."""
    sources: list[tuple[str, str, bool]] = [(w, v, True) for w, v in strings]
    sources += [(w, v, False) for w, v in texts.items()]
    parsed = [(w, _tokens(v), _candidates(v), is_value, v) for w, v, is_value in sources]
    all_tokens = {t for _, toks, cands, _, _ in parsed for t in (*toks, *cands)}
    value_dates = {d for w, v, is_value in sources if is_value for d in _dates(v)}
    if not all_tokens and not value_dates:
        return []
    found = identifiers(conn, all_tokens, value_dates)
    if found is None:
        return []

    hits: list[Hit] = []
    seen = set()

    def add(kind, where):
        if (kind, where) not in seen:
            seen.add((kind, where))
            hits.append(Hit(kind, where))

    for where, toks, cands, is_value, raw_value in parsed:
        if found.mrns.intersection(cands):
            add("MRN", where)
        if is_value:  # family and given anywhere in one value (a hyphenated family as written)
            words = set(toks) | cands
            if any(found.names.get(t, set()) & words for t in words):
                add("patient name", where)
        elif any(
            t in found.names
            and ((i + 1 < len(toks) and toks[i + 1] in found.names[t]) or (i > 0 and toks[i - 1] in found.names[t]))
            for i, t in enumerate(toks)
        ):
            add("patient name", where)
        if is_value and found.births and found.births.intersection(_dates(raw_value)):
            add("birth date", where)
    return hits


def guard(conn, report: str, reader, rendered) -> None:
    """Raise ``PhiFound`` when the scan finds anything; the report must not go out.
    ``reader``: the ``ReportReader`` the report was built with (its ``strings``), or None."""
    hits = scan(conn, reader.strings if reader else [], rendered_texts(rendered))
    if hits:
        raise PhiFound(report, hits)


# -- redaction (alerts) -------------------------------------------------------------------
def redact(conn, text: str, keep_dates: Iterable[dt.date] = ()) -> tuple[str, int]:
    """``text`` with every identifier the warehouse knows replaced by ``REDACTED``, and
    how many were: MRN candidates, a family name next to one of its given names (both
    words), birth dates (but ``keep_dates``: the run's own date, which a newborn's birth
    date may equal). For text that must go out whatever it holds (a failure alert).
    ``PhiScanFailed`` (or a database error) when the warehouse cannot answer."""
    words = list(_TOKEN.finditer(text))
    toks = [m.group().upper() for m in words]
    spans = _candidate_spans(text)
    date_spans = [s for s in _date_spans(text) if s[2] not in set(keep_dates)]
    found = identifiers(conn, {c for _, _, c in spans} | set(toks), {d for _, _, d in date_spans})
    if found is None:
        return text, 0
    cut = [(a, b) for a, b, c in spans if c in found.mrns]
    cut += [(a, b) for a, b, d in date_spans if d in found.births]
    for i, t in enumerate(toks):
        given = found.names.get(t)
        for j in (i - 1, i + 1):
            if given and 0 <= j < len(toks) and toks[j] in given:
                cut += [words[i].span(), words[j].span()]
    return _cut(text, cut)


def redact_likely_identifiers(text: str) -> tuple[str, int]:
    """Without a warehouse to ask: replace what looks like an identifier (the rule is in
    the module docstring), and how many were. Over-redacts on purpose."""
    cut = [
        m.span()
        for m in _CHAIN.finditer(text)
        if sum(c.isdigit() for c in m.group()) >= 5 and not _NOT_AN_ID.fullmatch(m.group())
    ]
    cut += [m.span() for m in _HL7_COMPONENTS.finditer(text)]
    cut += [m.span(1) if m.group(1) is not None else m.span(2) for m in _QUOTED.finditer(text)]
    return _cut(text, cut)


def _cut(text: str, spans: list[tuple[int, int]]) -> tuple[str, int]:
    merged: list[list[int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    for a, b in reversed(merged):
        text = text[:a] + REDACTED + text[b:]
    return text, len(merged)
