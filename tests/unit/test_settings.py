"""A setting has one definition: the facility time zone's default is written once, in
healthops.config, and reaches every dbt run from there (dbt_project.yml has no
default of its own)."""

from __future__ import annotations

import re

import pytest
import yaml

from healthops import config
from healthops.warehouse.dbt_runner import dbt_env

PRODUCT = ("plugins", "dags", "dbt_project/models", "dbt_project/macros", "expectations", "report_templates")


def test_the_default_zone_is_written_once_in_the_product_code():
    found = []
    for top in PRODUCT:
        for path in (config.REPO_ROOT / top).rglob("*"):
            if path.suffix in (".py", ".sql", ".yml", ".yaml", ".j2") and "__pycache__" not in path.parts:
                if config.DEFAULT_FACILITY_TZ in path.read_text():
                    found.append(str(path.relative_to(config.REPO_ROOT)))
    project = (config.DBT_PROJECT_DIR / "dbt_project.yml").read_text()
    assert config.DEFAULT_FACILITY_TZ not in re.sub(r"#.*", "", project)  # comments may name an example
    assert found == ["plugins/healthops/config.py"]


def test_dbt_reads_the_zone_from_the_environment_healthops_gives_it(monkeypatch):
    var = yaml.safe_load((config.DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]["facility_tz"]
    assert var == "{{ env_var('HEALTHOPS_FACILITY_TZ') }}"  # no default: a run without it fails, naming it
    monkeypatch.delenv("HEALTHOPS_FACILITY_TZ", raising=False)
    assert dbt_env(None)["HEALTHOPS_FACILITY_TZ"] == config.DEFAULT_FACILITY_TZ
    monkeypatch.setenv("HEALTHOPS_FACILITY_TZ", "America/Chicago")
    assert dbt_env(None)["HEALTHOPS_FACILITY_TZ"] == "America/Chicago"
    assert config.dbt_project_env() == {"HEALTHOPS_FACILITY_TZ": "America/Chicago"}


def test_the_timekeeping_settings(monkeypatch):
    monkeypatch.delenv("HEALTHOPS_TIMEKEEPING_URL", raising=False)
    monkeypatch.delenv("HEALTHOPS_TIMEKEEPING_OVERLAP_MINUTES", raising=False)
    assert config.timekeeping_source_url() is None
    assert config.timekeeping_overlap().total_seconds() == 2 * 3600
    monkeypatch.setenv("HEALTHOPS_TIMEKEEPING_URL", "postgres://reader:pw@tk.example.org/timekeeping")
    assert config.timekeeping_source_url() == "postgresql+psycopg://reader:pw@tk.example.org/timekeeping"
    monkeypatch.setenv("HEALTHOPS_TIMEKEEPING_OVERLAP_MINUTES", "30")
    assert config.timekeeping_overlap().total_seconds() == 1800
    for bad in ("-5", "soon", "inf"):
        monkeypatch.setenv("HEALTHOPS_TIMEKEEPING_OVERLAP_MINUTES", bad)
        with pytest.raises(ValueError, match="HEALTHOPS_TIMEKEEPING_OVERLAP_MINUTES"):
            config.timekeeping_overlap()
    monkeypatch.setenv("HEALTHOPS_TIMEKEEPING_URL", "mysql://tk.example.org/tk")
    with pytest.raises(ValueError, match="PostgreSQL timekeeping database"):
        config.timekeeping_source_url()
