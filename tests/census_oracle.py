"""The independent count: parse the landed files in Python and apply the rules of
docs/definitions.md#census-and-utilization with census_reference (no SQL, no dbt)."""

from __future__ import annotations

from datetime import date
from pathlib import Path


def landed_messages(landing: Path):
    from healthops.sources.adt.parser import parse_file
    from healthops.sources.adt.schema import AdtMessage

    out = []
    for folder in sorted((Path(landing) / "adt").iterdir()):
        received = date.fromisoformat(folder.name)
        for f in sorted(p for p in folder.glob("*.hl7")):
            rel = f"adt/{folder.name}/{f.name}"
            out.extend((received, rel, m) for m in parse_file(f) if isinstance(m, AdtMessage))
    return out


def reference_from_landing(landing: Path, start: date, end: date) -> dict:
    from healthops.census.units import inpatient_units

    from census_reference import compute_census

    units = [(u["facility_code"], u["unit_code"]) for u in inpatient_units()]
    return compute_census(landed_messages(landing), start, end, units)
