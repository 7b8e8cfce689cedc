"""Report kinds: what the publisher needs from each report of the catalog.

A catalog entry names its kind with ``builder:``; the publisher
(``healthops.reports.publish``) does the rest the same way for every report:
recipients and their filters, the delivery ledger (sent once per content
version; a changed report goes out once more, marked revised, listing what
changed), the PHI guard, the archive. A new report is a new kind module plus a
catalog entry, with no new machinery.

A kind provides:

``period``            "day" (period key YYYY-MM-DD), "week" (ISO week YYYY-Www, Monday to
    Sunday: published by the nightly run of its Sunday) or "month" (YYYY-MM).
``filter_keys``       the per-recipient filter keys it understands, e.g. ("facility", "units").
``required_filter``   keys every recipient must set (the daily census is per facility).
``models``            the reporting-layer models (``rpt_*``) it reads: its reader serves
    these only, and its dbt exposure's ``depends_on`` lists exactly these.
``build_context(reader, period, flt, entry) -> dict``
    Everything the report shows, read through ``reader`` (a ``reader.ReportReader``:
    allow-listed columns only), for one recipient filter ``flt`` ({} = no filter).
    Apply ``phi.suppress_table`` here when ``entry["suppress_small_cells"]``.
``figures(context) -> dict[str, JSON value]``
    The report's numbers, flat, keyed by a label a reader understands
    ("ICU midnight census 2026-11-02"). They version the content (ledger) and a
    revision lists the labels whose values changed. Never the generation time.
``optional_source`` (optional, default False)  True when the kind reads a source a
    hospital may not have (the staffing reports: timekeeping). With it, a period in
    which no facility has data (``facilities_with_data``, required then) sends nothing
    and is no error; a facility with data and no recipient is still named.
``checks`` (optional)  names of ``CHECKS`` the kind's context needs: checks over the
    warehouse that are no figure of it and that no model computes by design. The
    publisher runs each once per publication on its connection (``run_checks``) and
    passes the result to ``build_context`` as the keyword argument of that name; the
    kind itself never holds a connection. ``"audit_trail"``: the audit tables' hash
    chains verified in Python (``healthops.quality.audit_trail.verify``, a
    ``VerifyResult``), a cryptographic check, not an aggregate of the warehouse.
``render(context, entry, revision) -> RenderedReport``
    HTML e-mail body, PDF, charts (``render.render_document`` with the shared
    base layout), optional CSV attachment when "csv" is in ``entry["formats"]``.
    ``revision`` is None or a ``Revision``: pass it to the template as
    ``revision`` (base.html.j2 shows the banner) and prefix the subject with
    ``revision.subject_prefix``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Revision:
    number: int  # 1 = the first revision of a report already sent
    previous_sent_at: datetime
    changes: list[tuple[str, Any, Any]]  # (figure label, value sent before, value now)

    @property
    def subject_prefix(self) -> str:
        return "[REVISED] " if self.number == 1 else f"[REVISED {self.number}] "

    @property
    def summary(self) -> str:
        shown = "; ".join(f"{label}: {_fmt(old)} → {_fmt(new)}" for label, old, new in self.changes[:12])
        more = len(self.changes) - 12
        return shown + (f"; and {more} more" if more > 0 else "")


def _fmt(value: Any) -> str:
    return "—" if value is None else str(value)


def diff_figures(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Labels whose values differ (a figure that appeared or vanished counts), in
    the new report's order, then vanished ones."""
    changes = [(k, old.get(k), v) for k, v in new.items() if old.get(k) != v]
    changes += [(k, v, None) for k, v in old.items() if k not in new]
    return changes


class ReportKind(Protocol):
    period: str
    filter_keys: tuple[str, ...]
    required_filter: tuple[str, ...]
    models: tuple[str, ...]

    def build_context(self, reader, period: str, flt: dict, entry: dict) -> dict: ...

    def figures(self, context: dict) -> dict[str, Any]: ...

    def render(self, context: dict, entry: dict, revision: Revision | None): ...


# Builder name -> the module whose ``KIND`` implements it.
KIND_MODULES = {
    "daily_census": "healthops.reports.daily_census",
    "monthly_census": "healthops.reports.monthly_census",
    "dq_governance": "healthops.reports.dq_governance",
    "compliance_monthly": "healthops.reports.compliance",
    "staffing_huddle": "healthops.reports.staffing_huddle",
    "labor_productivity_weekly": "healthops.reports.labor_productivity",
}


# Check name -> (module, function of a connection): what ``run_checks`` may run.
CHECKS = {
    "audit_trail": ("healthops.quality.audit_trail", "verify"),
}


def run_checks(kind, conn) -> dict[str, Any]:
    """The checks ``kind.checks`` names, run on ``conn`` (the publisher's; reads only):
    {name: result}, the keyword arguments for the kind's ``build_context``."""
    import importlib

    out: dict[str, Any] = {}
    for name in getattr(kind, "checks", ()):
        module, function = CHECKS[name]
        out[name] = getattr(importlib.import_module(module), function)(conn)
    return out


def kind_for(builder: str) -> ReportKind:
    """The report kind a catalog entry's ``builder`` names (imported on first use:
    a kind may pull in heavy modules)."""
    import importlib

    if builder not in KIND_MODULES:
        raise KeyError(f"unknown report builder {builder!r} (known: {', '.join(sorted(KIND_MODULES))})")
    return importlib.import_module(KIND_MODULES[builder]).KIND
