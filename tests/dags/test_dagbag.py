"""The DAG folder imports cleanly, fast, without touching a database, and the
nightly DAG has the shape DESIGN.md asks for."""
import ast
from pathlib import Path

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


def test_dag_files_are_thin_and_use_task_sdk():
    for path in DAG_FILES:
        source = path.read_text()
        assert len(source.splitlines()) <= 150, f"{path.name} is over 150 lines"
        tree = ast.parse(source)
        top_imports = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
        assert "airflow.sdk" in top_imports
        # no healthops logic imported at module level beyond configuration
        assert not [m for m in top_imports if m and m.startswith("healthops") and m != "healthops"]


def test_nightly_dag_structure(dagbag):
    dag = dagbag.dags["healthops_census_nightly"]
    assert dag.doc_md and "idempotent" in dag.doc_md
    assert {"healthops", "census"} <= set(dag.tags)
    ids = {t.task_id for t in dag.tasks}
    assert {"load_adt", "validate_census", "publish_daily_census"} <= ids
    dbt_ids = {i for i in ids if i.startswith("dbt.")}
    # one task per model, one per seed (reloaded only when its CSV changed), the tests after all
    assert {"dbt.fct_census_daily_run", "dbt.fct_census_interval_run", "dbt.fct_encounters_run",
            "dbt.int_adt__events_run", "dbt.units_seed", "dbt.dbt_project_test"} <= dbt_ids
    for t in dag.tasks:
        assert t.owner == "data-engineering"
    load = dag.get_task("load_adt")
    assert load.retries == 2
    # load -> every dbt root; the dbt tests -> validate -> publish
    assert {"dbt.units_seed", "dbt.patient_class_map_seed", "dbt.stg_adt__messages_run"} <= load.downstream_task_ids
    assert dag.get_task("dbt.dbt_project_test").downstream_task_ids == {"validate_census"}
    assert dag.get_task("validate_census").upstream_task_ids == {"dbt.dbt_project_test"}
    assert dag.get_task("validate_census").downstream_task_ids == {"publish_daily_census"}
    assert dag.on_failure_callback, "a failed night must alert the data engineers"
    assert dag.max_active_runs == 1


def test_project_mode_runs_one_dbt_build_task(monkeypatch):
    """HEALTHOPS_DBT_TASKS=project (what the local runner uses): one `dbt build` task."""
    monkeypatch.setenv("HEALTHOPS_DBT_TASKS", "project")
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(config.DAGS_DIR)).dags["healthops_census_nightly"]
    assert {t.task_id for t in dag.tasks} == {"load_adt", "dbt_build", "validate_census", "publish_daily_census"}
    assert dag.get_task("dbt_build").upstream_task_ids == {"load_adt"}
    assert dag.get_task("validate_census").upstream_task_ids == {"dbt_build"}
