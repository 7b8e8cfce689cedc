"""The Data Docs site: built after every validation run under $HEALTHOPS_OUT/data_docs,
each night added to the same site (history from the store under $HEALTHOPS_HOME/gx),
and linked from the daily census report. The site is GX's: rule files run by another
engine (dbt source freshness) have no pages in it."""

from __future__ import annotations

import datetime as dt
import time

from healthops import config, pipeline
from healthops.quality import data_docs
from healthops.quality.rules import GX_ENGINE, rule_files
from healthops.warehouse.connection import connect

from test_census_rules import CENSUS, SUITES, D, build

GX_SUITES = [s for s in SUITES if s in {rf.suite_name for rf in rule_files("census") if rf.engine == GX_ENGINE}]


def _validation_pages(site):
    return sorted(p for p in (site / "validations").rglob("*.html"))


def test_site_is_built_after_each_validation_and_keeps_history(warehouse_url):
    build(warehouse_url)
    t0 = time.perf_counter()
    first = pipeline.validate_census(D, "scheduled__2025-03-01", url=warehouse_url)
    print(f"validate_census with Data Docs: {time.perf_counter() - t0:.2f}s")
    site = config.out() / "data_docs"
    index = site / "index.html"
    assert first["data_docs"] == str(index) and index.exists()
    html = index.read_text()
    for suite in GX_SUITES:
        assert suite in html
    assert "census_source_freshness" not in html
    assert len(_validation_pages(site)) == len(GX_SUITES)
    assert sorted(p.name for p in (site / "expectations").glob("*.html")) == sorted(f"{s}.html" for s in GX_SUITES)
    # the results on disk are under HEALTHOPS_HOME, not in the published site
    assert len(list((config.home() / "gx" / "validations").rglob("*.json"))) == len(GX_SUITES)

    # a failing night: the site is built before the blocking failure is raised
    nxt = D + dt.timedelta(days=1)
    with connect(warehouse_url) as conn:
        conn.execute(
            "insert into marts.fct_census_daily values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())",
            ("NGH", "NOSUCH", *CENSUS[0][2:]),
        )
    try:
        pipeline.validate_census(nxt, "scheduled__2025-03-02", url=warehouse_url)
    except pipeline.BlockingQualityFailure:
        pass
    else:
        raise AssertionError("CEN-011 should block")
    assert len(_validation_pages(site)) == 2 * len(GX_SUITES)  # both nights, one page per GX suite run
    html = index.read_text()
    assert "scheduled__2025-03-01" in html and "scheduled__2025-03-02" in html
    assert data_docs.site_url() == index.as_uri()


def test_where_reports_link_the_site(monkeypatch):
    """The link the daily census report carries (``daily_census`` puts ``site_url()`` in
    its context; tests/integration/test_cli.py finds it in a report a night sent): none
    before the first build, then the local index, unless a served URL is configured."""
    monkeypatch.delenv("HEALTHOPS_DATA_DOCS_URL", raising=False)
    assert data_docs.site_url() is None
    index = config.out() / "data_docs" / "index.html"
    index.parent.mkdir(parents=True)
    index.write_text("<html></html>")
    assert data_docs.site_url() == index.as_uri()
    monkeypatch.setenv("HEALTHOPS_DATA_DOCS_URL", "https://dq.example.org/census/index.html")
    assert data_docs.site_url() == "https://dq.example.org/census/index.html"
