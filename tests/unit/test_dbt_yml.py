"""The dbt project documents itself: every model (each .sql file under models/) and
every seed has a yml entry with a description, every yml entry names a model or seed
that exists, and every column the yml lists has a description; sources and their
tables and columns too. Columns are checked against the yml only (a model's SQL may
select more than its yml lists). Pure file reading: no dbt, no database."""

from __future__ import annotations

from pathlib import Path

import yaml

from healthops import config

PROJECT = Path(config.DBT_PROJECT_DIR)
MODELS = PROJECT / "models"
SEEDS = PROJECT / "seeds"


def _documents(folder: Path):
    for path in sorted(folder.rglob("*.yml")):
        yield path.relative_to(PROJECT), yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _entries(kind: str, folder: Path) -> dict[str, tuple[Path, dict]]:
    found: dict[str, tuple[Path, dict]] = {}
    for path, doc in _documents(folder):
        for entry in doc.get(kind) or []:
            assert entry["name"] not in found, f"{entry['name']} in both {found[entry['name']][0]} and {path}"
            found[entry["name"]] = (path, entry)
    return found


def _described(entry: dict) -> bool:
    text = entry.get("description")
    return isinstance(text, str) and text.strip() != ""


def _undescribed_columns(path: Path, owner: str, entry: dict) -> list[str]:
    return [f"{path}: {owner}.{c['name']}" for c in entry.get("columns") or [] if not _described(c)]


def _none(what: str, found: list[str]) -> None:
    assert not found, f"{what}:\n  " + "\n  ".join(found)


def test_every_model_has_a_yml_entry_with_a_description():
    sql_models = {p.stem for p in MODELS.rglob("*.sql")}
    documented = _entries("models", MODELS)
    assert sql_models, "no models found"
    _none("models with no yml entry", sorted(sql_models - set(documented)))
    _none("yml entries with no model .sql", sorted(set(documented) - sql_models))
    _none(
        "models without a description",
        [f"{path}: {name}" for name, (path, m) in documented.items() if not _described(m)],
    )


def test_every_model_column_in_the_yml_has_a_description():
    missing = [c for name, (path, m) in _entries("models", MODELS).items() for c in _undescribed_columns(path, name, m)]
    _none("columns without a description", missing)


def test_every_seed_and_its_columns_are_described():
    csv_seeds = {p.stem for p in SEEDS.glob("*.csv")}
    documented = _entries("seeds", SEEDS)
    assert csv_seeds, "no seeds found"
    _none("seeds with no yml entry", sorted(csv_seeds - set(documented)))
    _none("yml entries with no seed .csv", sorted(set(documented) - csv_seeds))
    missing = [f"{path}: {name}" for name, (path, s) in documented.items() if not _described(s)]
    missing += [c for name, (path, s) in documented.items() for c in _undescribed_columns(path, name, s)]
    _none("seeds or seed columns without a description", missing)


def test_every_source_table_and_column_is_described():
    missing = []
    sources = _entries("sources", MODELS)
    assert sources, "no sources found"
    for name, (path, source) in sources.items():
        if not _described(source):
            missing.append(f"{path}: source {name}")
        for table in source.get("tables") or []:
            if not _described(table):
                missing.append(f"{path}: {name}.{table['name']}")
            missing += _undescribed_columns(path, f"{name}.{table['name']}", table)
    _none("sources, tables or columns without a description", missing)
