"""The reporting layer's metadata, checked without a database: every column of the
reporting and mart layers says whether it is PHI (the report reader's allow-list is
built from it), every report of the catalog is a dbt exposure whose depends_on is
exactly what its kind reads, and the reader refuses what the metadata refuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from healthops import config
from healthops.reports.catalog import load_catalog
from healthops.reports.kinds import kind_for
from healthops.reports.reader import ColumnNotAllowed, ReportReader, column_meta, reporting_models

MODELS = config.DBT_PROJECT_DIR / "models"
LAYERS = ("reporting", "marts")


def _yml_models(layer: str):
    for path in sorted((MODELS / layer).rglob("*.yml")):
        for m in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models") or []:
            yield path, m


@pytest.mark.parametrize("layer", LAYERS)
def test_every_model_has_yml_and_every_column_says_whether_it_is_phi(layer):
    sql_models = {p.stem for p in (MODELS / layer).rglob("*.sql")}
    documented = {m["name"]: (path, m) for path, m in _yml_models(layer)}
    assert sql_models, f"no models under models/{layer}"
    assert sorted(sql_models - set(documented)) == [], "models without a yml entry"
    missing = [
        f"{path.name}: {m['name']}.{c['name']}"
        for path, m in documented.values()
        for c in m.get("columns") or []
        if not isinstance(column_meta(c).get("phi"), bool)
    ]
    assert missing == [], "columns without meta phi: true|false"
    for _, m in documented.values():
        assert m.get("columns"), f"{m['name']} lists no columns"


def _select_list_names(sql: str) -> list[str]:
    """The output column names of a model's final select: each top-level item's `as`
    alias, or the column name of a bare `t.column`."""
    final = sql[sql.lower().rindex("\nselect") + len("\nselect") :]
    final = final[: re.search(r"\n(from|where|group by|order by)\b", final).start()]
    final = re.sub(r"--[^\n]*", "", final)
    items, depth, current = [], 0, ""
    for ch in final:
        depth += ch in "(["
        depth -= ch in ")]"
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    items.append(current)
    names = []
    for item in (i.strip() for i in items if i.strip()):
        m = re.search(r"\bas\s+([a-z_][a-z0-9_]*)$", item) or re.fullmatch(r"(?:[a-z_]+\.)?([a-z_][a-z0-9_]*)", item)
        names.append(m.group(1) if m else item)
    return names


def test_reporting_yml_lists_exactly_the_columns_the_sql_selects():
    checked = 0
    for path, m in _yml_models("reporting"):
        sql = next((MODELS / "reporting").rglob(f"{m['name']}.sql")).read_text(encoding="utf-8")
        final = sql[sql.lower().rindex("\nselect") :]
        if "{%" in final:  # a select list written by a Jinja loop: see the warehouse test
            continue
        selected = _select_list_names(sql)
        assert sorted(selected) == sorted(c["name"] for c in m["columns"]), f"{path.name}: {m['name']}"
        checked += 1
    assert checked >= 10


def test_the_reader_allows_only_non_phi_columns_of_declared_models():
    models = reporting_models()
    assert "rpt_daily_census_units" in models
    spec = models["rpt_daily_census_units"]
    assert spec.schema == "rpt" and "occupancy_pct" in spec.readable
    assert {"midnight_census", "staffed_beds"} <= spec.additive
    with pytest.raises(ColumnNotAllowed, match="not reporting-layer models"):
        ReportReader(None, ["fct_encounters"], models)
    fake = {**models, "rpt_x": type(spec)("rpt_x", "rpt", {"code": False, "mrn": True})}
    reader = ReportReader(None, ["rpt_x"], fake)
    with pytest.raises(ColumnNotAllowed, match="mrn are PHI"):
        reader.select("rpt_x", ["code", "mrn"])
    assert reader.queries == []


def test_a_column_without_phi_meta_is_refused(tmp_path):
    project = tmp_path / "proj"
    (project / "models" / "reporting").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("models:\n  healthops:\n    reporting:\n      '+schema': rpt\n")
    (project / "models" / "reporting" / "m.yml").write_text(
        "models:\n  - name: rpt_m\n    columns:\n      - name: a\n        config: {meta: {phi: false}}\n"
        "      - name: b\n        description: no meta\n"
    )
    with pytest.raises(ValueError, match=r"rpt_m\.b has no meta phi"):
        reporting_models(project)


def _exposures() -> dict[str, dict]:
    out = {}
    for path in sorted((MODELS / "reporting").rglob("*.yml")):
        for e in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("exposures") or []:
            out[e["name"]] = e
    return out


def test_every_catalog_report_is_an_exposure_of_exactly_the_models_it_reads():
    catalog = load_catalog()
    exposures = _exposures()
    assert sorted(exposures) == sorted(catalog["reports"])
    for report_id, entry in catalog["reports"].items():
        e = exposures[report_id]
        assert e["owner"].get("email") and e["owner"].get("name"), report_id
        refs = sorted(re.fullmatch(r"ref\('([a-z0-9_]+)'\)", d).group(1) for d in e["depends_on"])
        kind = kind_for(entry.get("builder", report_id))
        models = getattr(kind, "models", None)
        if models is None:
            pytest.fail(f"{report_id}: its kind declares no models (it must read the reporting layer)")
        assert refs == sorted(models), report_id
        assert all(m.startswith("rpt_") for m in models), report_id


def test_report_modules_hold_no_sql():
    """Report modules select through the reader only: no connection, no SQL text."""
    from healthops.reports.kinds import KIND_MODULES

    plugins = Path(config.REPO_ROOT) / "plugins"
    for module in KIND_MODULES.values():
        name = module.replace(".", "/") + ".py"
        text = (plugins / name).read_text(encoding="utf-8")
        assert ".conn" not in text and "execute(" not in text, name
        assert not re.search(r"\bselect\b[^\n]*\bfrom\s+[a-z_]+\.", text, flags=re.I), name
