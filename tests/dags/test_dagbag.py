"""The DAG folder imports cleanly, fast, without touching a database, and the
nightly DAG has the shape docs/architecture.md#the-nightly-dag describes."""

import ast

import pytest

from healthops import config
from healthops.warehouse.dbt_runner import ensure_manifest

DAG_FILES = sorted(config.DAGS_DIR.glob("*.py"))


@pytest.fixture(scope="module")
def dagbag():
    ensure_manifest()
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(config.DAGS_DIR))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == {p.stem for p in DAG_FILES}


def _code_lines(source: str) -> int:
    """Lines of code: not blank, not a comment, not the module docstring (the DAG's
    documentation, shown in Airflow's UI, may be as long as it needs)."""
    tree = ast.parse(source)
    doc = tree.body[0] if ast.get_docstring(tree) else None
    skip = set(range(doc.lineno, doc.end_lineno + 1)) if doc else set()
    return sum(
        1
        for i, line in enumerate(source.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#") and i not in skip
    )


def test_dag_files_are_thin_and_use_task_sdk():
    for path in DAG_FILES:
        source = path.read_text()
        assert _code_lines(source) <= 100, f"{path.name} has over 100 lines of code"
        tree = ast.parse(source)
        top_imports = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
        assert "airflow.sdk" in top_imports
        # no healthops logic imported at module level beyond configuration (settings, the report catalog)
        assert not [
            m
            for m in top_imports
            if m and m.startswith("healthops") and m not in ("healthops", "healthops.reports.catalog")
        ]


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_parsing_a_dag_file_imports_no_rendering_quality_or_database_stack(path):
    """What a dag-processor pays for every parse: the catalog is read, the stacks that
    render, check and load are imported only when a task runs."""
    import subprocess
    import sys

    heavy = (
        "matplotlib",
        "weasyprint",
        "great_expectations",
        "pandas",
        "healthops.reports.render",
        "healthops.quality",
        "healthops.load",
    )
    code = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('d', {str(path)!r}); "
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
        f"print(sorted(h for h in {heavy!r} if any(n == h or n.startswith(h + '.') for n in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout[-2000:]


# The catalog's reports published at the end of the nightly run (a weekly one does
# nothing on the nights that end no week).
NIGHTLY_PUBLISHERS = {"publish_daily_census", "publish_staffing_huddle", "publish_labor_productivity_weekly"}


def test_the_catalog_schedules_the_dags(dagbag):
    from healthops.reports.catalog import load_catalog

    catalog = load_catalog()
    monthly = dagbag.dags["healthops_reports_monthly"]
    assert monthly.timetable.expression == catalog["reports"]["monthly_census"]["schedule"]["cron"] == "0 6 1 * *"
    assert {t.task_id for t in monthly.tasks} == {
        f"publish_{r}" for r, e in catalog["reports"].items() if e["period"] == "month"
    }
    nightly = dagbag.dags["healthops_census_nightly"]
    after = {
        f"publish_{r}"
        for r, e in catalog["reports"].items()
        if e["schedule"].get("after") == "healthops_census_nightly"
    }
    assert after == NIGHTLY_PUBLISHERS and after <= {t.task_id for t in nightly.tasks}


def test_a_catalog_with_two_monthly_crons_is_refused(tmp_path):
    import yaml

    from healthops.errors import ConfigurationError
    from healthops.reports.catalog import load_catalog, period_cron

    raw = yaml.safe_load((config.REPORT_TEMPLATES_DIR / "catalog.yml").read_text())
    raw["reports"]["dq_governance"]["schedule"] = {"cron": "0 7 2 * *"}
    (tmp_path / "c.yml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigurationError, match="the monthly reports need one cron schedule"):
        period_cron(load_catalog(tmp_path / "c.yml"), "month")
    raw["reports"]["dq_governance"]["schedule"] = "monthly"
    (tmp_path / "c.yml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigurationError, match="schedule must be"):
        load_catalog(tmp_path / "c.yml")


def test_nightly_dag_structure(dagbag):
    dag = dagbag.dags["healthops_census_nightly"]
    assert dag.doc_md and "idempotent" in dag.doc_md
    assert {"healthops", "census"} <= set(dag.tags)
    ids = {t.task_id for t in dag.tasks}
    assert {"load_adt", "validate_workforce", "validate_census", "publish_daily_census"} <= ids
    dbt_ids = {i for i in ids if i.startswith("dbt.")}
    # one task per model, one per seed (reloaded only when its CSV changed), the tests after all
    assert {
        "dbt.fct_census_daily_run",
        "dbt.fct_census_interval_run",
        "dbt.fct_encounters_run",
        "dbt.int_adt__events_run",
        "dbt.units_seed",
        "dbt.dbt_project_test",
    } <= dbt_ids
    for t in dag.tasks:
        assert t.owner == "data-engineering"
    load = dag.get_task("load_adt")
    assert load.retries == 2
    # load -> every dbt root; the dbt tests -> the reporting views -> validate -> publish
    assert {"dbt.units_seed", "dbt.patient_class_map_seed", "dbt.stg_adt__messages_run"} <= load.downstream_task_ids
    # the workforce sources load beside the ADT feed, before the models that read them
    for extract in ("load_hr", "extract_timekeeping"):
        assert dag.get_task(extract).downstream_task_ids == load.downstream_task_ids
    assert {"dbt.fct_unit_staffing_interval_run", "dbt.fct_unit_staffing_daily_run", "dbt.job_codes_seed"} <= dbt_ids
    assert dag.get_task("dbt.dbt_project_test").downstream_task_ids == {"dbt_reporting"}
    # the workforce rules (warnings) run first; validate_census then writes the audit heads once, over both
    assert dag.get_task("validate_workforce").upstream_task_ids == {"dbt_reporting"}
    assert dag.get_task("validate_census").upstream_task_ids == {"validate_workforce"}
    # the reporting layer's views are one task (one dbt process), not one each
    assert not [i for i in dbt_ids if ".rpt_" in i or ".int_governance__" in i]
    reporting = dag.get_task("dbt_reporting")
    assert reporting.select == ["path:models/reporting"]
    # dbt's unit tests are CI's (tests/integration/test_dbt_unit_tests.py), not the night's
    assert reporting.exclude == ["resource_type:unit_test"]
    assert "resource_type:unit_test" in dag.get_task("dbt.dbt_project_test").exclude
    # every dbt task gets the settings dbt_project.yml reads (it has no defaults of its own)
    for task_id in ("dbt.fct_census_daily_run", "dbt.dbt_project_test", "dbt_reporting"):
        assert dag.get_task(task_id).env == config.dbt_project_env(), task_id
    assert dag.get_task("validate_census").downstream_task_ids == NIGHTLY_PUBLISHERS
    assert dag.on_failure_callback, "a failed night must alert the data engineers"
    assert dag.max_active_runs == 1


def test_project_mode_runs_one_dbt_build_task(monkeypatch):
    """HEALTHOPS_DBT_TASKS=project (what the local runner uses): one `dbt build` task."""
    monkeypatch.setenv("HEALTHOPS_DBT_TASKS", "project")
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(config.DAGS_DIR)).dags["healthops_census_nightly"]
    sources = {"load_adt", "load_hr", "extract_timekeeping"}
    checks = {"validate_workforce", "validate_census"}
    assert {t.task_id for t in dag.tasks} == sources | checks | {"dbt_build"} | NIGHTLY_PUBLISHERS
    assert dag.get_task("dbt_build").upstream_task_ids == sources
    assert dag.get_task("validate_workforce").upstream_task_ids == {"dbt_build"}
    assert dag.get_task("validate_census").upstream_task_ids == {"validate_workforce"}
    assert dag.get_task("dbt_build").exclude == ["resource_type:unit_test"]
    assert dag.get_task("dbt_build").env == config.dbt_project_env()
    # dbt's partial parse is kept between nights (Cosmos keeps it only for its task groups by itself)
    assert dag.get_task("dbt_build").cache_dir.name == "healthops_census_nightly"
