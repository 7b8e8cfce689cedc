"""`healthops docs` (run by the demo): dbt's documentation site, with every report of
the catalog as an exposure whose lineage reaches its reporting models, and the PHI
meta of their columns, written under $HEALTHOPS_OUT/dbt_docs."""

from __future__ import annotations

import json

from healthops.reports.catalog import load_catalog
from healthops.warehouse.dbt_runner import DOCS_FILES, generate_docs, manifest_path


def test_docs_site_shows_each_report_as_an_exposure(warehouse_url, tmp_path):
    before = manifest_path().stat().st_mtime if manifest_path().exists() else None
    page = generate_docs(warehouse_url, tmp_path / "dbt_docs")
    assert page.name == "static_index.html"
    assert sorted(p.name for p in page.parent.iterdir()) == sorted(DOCS_FILES)
    manifest = json.loads((page.parent / "manifest.json").read_text())
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert set(exposures) == set(load_catalog()["reports"])  # every emailed report, with its lineage
    assert exposures["daily_census"]["depends_on"]["nodes"] == [
        "model.healthops.rpt_daily_census_units",
        "model.healthops.rpt_daily_quality_checks",
    ]
    col = manifest["nodes"]["model.healthops.rpt_daily_census_units"]["columns"]["occupancy_pct"]
    assert col["config"]["meta"]["phi"] is False or col["meta"]["phi"] is False
    html = page.read_text(encoding="utf-8")
    assert len(html) > 100_000 and "rpt_daily_census_units" in html
    # the checkout's manifest (the DAGs') is not touched
    assert (manifest_path().stat().st_mtime if manifest_path().exists() else None) == before
