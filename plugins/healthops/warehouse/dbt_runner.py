"""Running dbt outside Airflow (the CLI, tests, manifest generation). Under
Airflow, Cosmos runs the same project with a profile built from the
``healthops_warehouse_transformer`` connection (the transformer role's login)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from healthops import config
from healthops.warehouse.connection import url_parts

# Where ``run_dbt``'s runs keep their artifacts and logs when set (default: the project's
# target/ and logs/). The test suite gives each of its parallel workers its own, so two
# workers never write the same files. dbt's own DBT_TARGET_PATH is not used for this: it
# would also reach the dbt that Cosmos runs under Airflow, which reads its artifacts from
# its own copy of the project.
TARGET_PATH_ENV, LOG_PATH_ENV = "HEALTHOPS_DBT_TARGET_PATH", "HEALTHOPS_DBT_LOG_PATH"
PARTIAL_PARSE = "partial_parse.msgpack"


def target_path(url: str | None, project_dir: Path | None = None) -> Path:
    """The target path of ``run_dbt``'s runs against the warehouse at ``url``: the
    project's target/ (dbt's default), or, when $HEALTHOPS_DBT_TARGET_PATH is set, a
    sub-directory of it per server, login and database.

    Why per login and database: dbt's partial-parse state (target/partial_parse.msgpack)
    holds only for the connection it was parsed with (dbt hashes host, port, user and
    database into it, and bakes the database into every node), so runs against several
    warehouses in one target path re-parse the whole project at each switch (~1.7 s of
    CPU a run). A deployment has one warehouse; the test suite has many, one after the
    other, and gives them names it reuses (tests/db_names.py), so each finds the state
    its name's last runs left."""
    root = os.environ.get(TARGET_PATH_ENV)
    if not root:
        return Path(project_dir or config.DBT_PROJECT_DIR) / "target"
    if not url:
        return Path(root)
    p = url_parts(url)
    key = re.sub(r"[^A-Za-z0-9_.@-]", "_", f"{p['user']}@{p['host']}_{p['port']}_{p['dbname']}")
    return Path(root) / key


def dbt_env(url: str | None) -> dict[str, str]:
    """Environment for dbt_project/profiles.yml, derived from a warehouse URL, and the
    settings dbt_project.yml reads (``config.dbt_project_env``)."""
    env = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1", **config.dbt_project_env()}
    if os.environ.get(TARGET_PATH_ENV):
        env["DBT_TARGET_PATH"] = str(target_path(url))
    if os.environ.get(LOG_PATH_ENV):
        env["DBT_LOG_PATH"] = os.environ[LOG_PATH_ENV]
    if url:
        p = url_parts(url)
        env.update(
            {
                "HEALTHOPS_PGHOST": p["host"],
                "HEALTHOPS_PGPORT": str(p["port"]),
                "HEALTHOPS_PGUSER": p["user"],
                "HEALTHOPS_PGPASSWORD": p["password"],
                "HEALTHOPS_PGDATABASE": p["dbname"],
            }
        )
    return env


def run_dbt(
    args: list[str],
    url: str | None = None,
    project_dir: Path | None = None,
    check: bool = True,
    capture: bool = False,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """``dbt <args>`` in a subprocess against the warehouse at ``url``; ``env`` adds
    variables for this run only."""
    project = Path(project_dir or config.DBT_PROJECT_DIR)
    env = {**os.environ, **dbt_env(url), **(env or {})}
    dbt = Path(sys.executable).with_name("dbt")
    cmd = [str(dbt), *args, "--project-dir", str(project), "--profiles-dir", str(project)]
    own = _own_target(args)
    shared = target_path(url, project) if own and url and os.environ.get(TARGET_PATH_ENV) else None
    if shared:  # seeded with the connection's state (dbt checks it and re-parses if stale)
        _copy_state(shared / PARTIAL_PARSE, own / PARTIAL_PARSE, only_if_absent=True)
    proc = subprocess.run(cmd, env=env, cwd=project, text=True, capture_output=capture)
    if shared:  # and its state is the connection's next runs'
        _copy_state(own / PARTIAL_PARSE, shared / PARTIAL_PARSE)
    if check and proc.returncode != 0:
        tail = (proc.stdout or "")[-4000:] if capture else ""
        raise RuntimeError(f"dbt {' '.join(args)} failed with exit code {proc.returncode}\n{tail}")
    return proc


def _own_target(args: list[str]) -> Path | None:
    """The target path a run is given on its command line (its artifacts kept apart)."""
    for i, arg in enumerate(args):
        if arg == "--target-path" and i + 1 < len(args):
            return Path(args[i + 1])
        if arg.startswith("--target-path="):
            return Path(arg.split("=", 1)[1])
    return None


def _copy_state(src: Path, dst: Path, only_if_absent: bool = False) -> None:
    """Copy a partial-parse file, whole or not at all (a concurrent run reads the old
    one or the new one, never half of one)."""
    if not src.is_file() or (only_if_absent and dst.exists()):
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def nightly_build(url: str, *args: str, capture: bool = True) -> subprocess.CompletedProcess:
    """``dbt build`` as the nightly DAG runs it: logged in as the transformer role
    (``healthops.warehouse.roles``; ``url`` gives the server and database), without the
    unit tests (``config.NIGHTLY_DBT_EXCLUDE``), with ``args`` added (e.g. ``--full-refresh``)."""
    from healthops.warehouse.roles import step_url

    return run_dbt(
        ["build", "--exclude", config.NIGHTLY_DBT_EXCLUDE, *args], step_url(url, "transformer"), capture=capture
    )


def manifest_path(project_dir: Path | None = None) -> Path:
    return Path(project_dir or config.DBT_PROJECT_DIR) / "target" / "manifest.json"


def _project_mtime(project: Path) -> float:
    newest = 0.0
    for sub in ("models", "seeds", "macros", "tests", "snapshots"):
        for p in (project / sub).rglob("*"):
            if p.is_file():
                newest = max(newest, p.stat().st_mtime)
    for name in ("dbt_project.yml", "profiles.yml"):
        newest = max(newest, (project / name).stat().st_mtime)
    return newest


def ensure_manifest(project_dir: Path | None = None) -> Path:
    """Parse the project when its manifest is missing or older than any project file.
    Cosmos loads the DAG's dbt nodes from this manifest so that DAG parsing stays
    fast and needs no database.

    The parse writes to a private target path and the manifest (with dbt's partial
    parse file) is then moved into target/ whole: a reader, or a second process
    parsing at the same time (the CLI and a DAG parse, two test workers), never sees
    a half-written file."""
    import shutil
    import tempfile

    project = Path(project_dir or config.DBT_PROJECT_DIR)
    manifest = manifest_path(project)
    if not manifest.exists() or manifest.stat().st_mtime < _project_mtime(project):
        manifest.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".parse-", dir=manifest.parent))  # same file system: rename is atomic
        try:
            run_dbt(
                ["parse", "--quiet", "--target-path", str(work), "--log-path", str(work)], None, project, capture=True
            )
            for name in ("partial_parse.msgpack", "manifest.json"):  # the manifest last: its mtime says "fresh"
                if (work / name).exists():
                    os.replace(work / name, manifest.parent / name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return manifest


DOCS_FILES = ("index.html", "static_index.html", "manifest.json", "catalog.json")


def generate_docs(url: str, out_dir: Path) -> Path:
    """``dbt docs generate --static`` against the warehouse at ``url`` (the catalog of
    relations and columns is read from it), written to ``out_dir``: ``static_index.html``
    is the whole site in one file (open it from disk: models, columns with their PHI
    meta, tests, and every report as an exposure with its lineage); ``index.html``
    with ``manifest.json`` and ``catalog.json`` is the served form (``dbt docs serve``
    or any web server). Built in a private target path: the checkout's manifest is the
    DAGs' and stays as it is. Returns the static page."""
    import shutil
    import tempfile

    from healthops.warehouse.roles import step_url

    out_dir = Path(out_dir)
    url = step_url(url, "transformer")  # what dbt builds, its own catalog
    with tempfile.TemporaryDirectory(prefix="healthops-dbt-docs-") as target:
        run_dbt(["docs", "generate", "--static", "--target-path", target, "--log-path", target], url, capture=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in DOCS_FILES:
            shutil.copyfile(Path(target) / name, out_dir / name)
    return out_dir / "static_index.html"
