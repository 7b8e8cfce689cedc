"""The units reference data (the dbt seed the hospital edits), read from the file."""

from __future__ import annotations

import csv
from functools import lru_cache

from healthops import config


@lru_cache(maxsize=1)
def _load(path: str) -> tuple[dict, ...]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = []
        for r in csv.DictReader(f):
            r["staffed_beds"] = int(r["staffed_beds"])
            r["licensed_beds"] = int(r["licensed_beds"])
            rows.append(r)
    return tuple(rows)


def load_units(path=None) -> list[dict]:
    return [dict(r) for r in _load(str(path or config.DBT_PROJECT_DIR / "seeds" / "units.csv"))]


def inpatient_units(path=None) -> list[dict]:
    return [u for u in load_units(path) if u["unit_type"] != "emergency"]


@lru_cache(maxsize=4)
def facility_names(path: str | None = None) -> dict[str, str]:
    with open(path or config.DBT_PROJECT_DIR / "seeds" / "facilities.csv", newline="", encoding="utf-8") as f:
        return {r["facility_code"]: r["facility_name"] for r in csv.DictReader(f)}
