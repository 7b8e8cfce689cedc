"""The dbt unit tests (given/expect yml beside the models: the cancel-voiding logic and
the day-counting rules) run against a real PostgreSQL and pass.

They run here, in CI: the nightly builds leave them out (``config.NIGHTLY_DBT_EXCLUDE``,
as dbt advises for production). `dbt build` runs a model's unit tests after its parents
are built and before the model itself (dbt reads the column types of the mocked inputs
from those parents). The warehouse is empty but for the
schema: the unit tests bring their own rows. dbt writes to a temporary target and log
folder, never to the project's (other tests share dbt_project/target)."""

import json

import yaml

from healthops import config
from healthops.warehouse.dbt_runner import run_dbt


def defined_unit_tests() -> set[str]:
    names = set()
    for path in sorted((config.DBT_PROJECT_DIR / "models").rglob("*.yml")):
        doc = yaml.safe_load(path.read_text()) or {}
        names |= {t["name"] for t in doc.get("unit_tests") or []}
    return names


def test_dbt_unit_tests_run_and_pass(warehouse_url, tmp_path):
    defined = defined_unit_tests()
    assert defined, "no unit_tests in dbt_project/models"
    # warehouse_url is migrated (raw and audit tables exist): dbt build makes the rest
    target = tmp_path / "target"
    proc = run_dbt(
        ["--no-use-colors", "build", "--target-path", str(target), "--log-path", str(tmp_path / "logs")],
        warehouse_url,
        check=False,
        capture=True,
    )
    results = json.loads((target / "run_results.json").read_text())["results"]

    unit = {r["unique_id"].rsplit(".", 1)[-1]: r for r in results if r["unique_id"].startswith("unit_test.")}
    assert set(unit) == defined, f"ran {sorted(unit)}, defined {sorted(defined)}"
    failed = {name: (r["status"], r.get("message")) for name, r in unit.items() if r["status"] != "pass"}
    assert not failed, f"{failed}\n{proc.stdout[-4000:]}"
    assert proc.returncode == 0, proc.stdout[-4000:]
