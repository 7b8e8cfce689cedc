"""Workforce pipeline at scale: a 1,000-bed system's year of timekeeping extracted,
loaded and built by healthops' own code, then one more night, incremental.

    PYTHONPATH=plugins .venv/bin/python bench/workforce_pipeline_bench.py \
        [--beds 1000] [--days 365] [--census-days 28] [--hr-days 28] [--json out.json]

On a throwaway embedded PostgreSQL (its own HEALTHOPS_HOME, dbt target path and
landing folder under a scratch directory, removed afterwards):

1. Generated, not timed: ``--days`` of the two seed facilities' staff scaled to
   ``--beds`` (``generate_workforce``: HR snapshot files and a timekeeping database
   beside the warehouse) and the ADT feed of the last ``--census-days`` days (the
   census grid the interval mart is built on).
2. History, timed step by step: the HR snapshots of the last ``--hr-days`` days
   before the final night (``load_hr_date`` per day), the ADT days (``load_adt_date``),
   one timekeeping extract up to the end of the night before the last
   (``extract_timekeeping``: every punch and pay line of the year), then ``dbt run``
   of the workforce models and marts (the census models they read included), as the
   transformer, from nothing.
3. The last night, timed: its HR snapshot, ADT and extract (only the versions new
   since), then the same ``dbt run``, now incremental; how many interval rows it
   recomputed.
4. The same night again: nothing new to extract, and the ``dbt run``.
5. Not timed: every source row updated before the last night's end is in the warehouse,
   as a version of ``raw.tk_*`` or a rejection in ``raw.rejected`` (its id and
   ``updated_at``, anti-joined); the count of those missing is printed (0 expected).

Prints each step's seconds and rows, and each ``dbt run``'s slowest models (dbt's
run_results.json); ``--json`` writes them."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from workforce_bench import system_beds

START = date(2025, 11, 1)
# every workforce model and mart the nightly build runs, and what they read (the census)
SELECT = "+path:models/intermediate/workforce +path:models/marts/workforce"


def _timed(results: dict, name: str, fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    results[name] = {"seconds": round(time.perf_counter() - t, 1)}
    print(f"{name:<34} {results[name]['seconds']:8.1f} s", flush=True)
    return out


def _slowest_models(results: dict, name: str, target: Path, top: int = 8) -> None:
    """The ``top`` slowest nodes of the dbt run just timed, from its run_results.json."""
    runs = json.loads((target / "run_results.json").read_text())["results"]
    slow = sorted(((r["execution_time"], r["unique_id"].split(".")[-1]) for r in runs), reverse=True)[:top]
    results[name]["slowest"] = {m: round(s, 1) for s, m in slow}
    print("    " + ", ".join(f"{m} {s:.1f}" for s, m in slow), flush=True)


def _missing_from_warehouse(url: str, tk_url: str, as_of) -> dict[str, int]:
    """Per timekeeping table: the source rows updated before ``as_of`` whose version
    (id, updated_at) the warehouse holds neither in raw nor as a rejection."""
    from psycopg import sql

    from healthops.load.timekeeping import TARGETS, _iso
    from healthops.sources.timekeeping.extract import source_snapshot
    from healthops.warehouse.connection import connect

    out = {}
    with connect(url) as conn, source_snapshot(tk_url) as src:
        for target in TARGETS:
            table = target.source
            conn.execute("create temp table _src (id bigint, updated_at timestamptz) on commit drop")
            query = sql.SQL("copy (select {}, updated_at from {} where updated_at < {}) to stdout").format(
                sql.Identifier(table.id_column), sql.Identifier(*table.name.split(".")), sql.Literal(as_of)
            )
            with (
                src.cursor().copy(query) as out_copy,
                conn.cursor().copy("copy _src from stdin") as in_copy,
            ):
                for block in out_copy:
                    in_copy.write(block)
            key = f"'{table.name} ' || s.id || ' @ ' || {_iso('s.updated_at')}"  # as the extract writes it
            (missing,) = conn.execute(
                f"""select count(*) from _src s
                    where not exists (select from {target.raw_table} r
                                      where r.{table.id_column} = s.id and r.updated_at = s.updated_at)
                      and not exists (select from raw.rejected j
                                      where j.source = 'timekeeping'
                                        and j.control_id = {key})"""
            ).fetchone()
            (n,) = conn.execute("select count(*) from _src").fetchone()
            conn.commit()
            out[table.name] = {"source_rows": n, "missing": missing}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--beds", type=int, default=1000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--census-days", type=int, default=28)
    ap.add_argument("--hr-days", type=int, default=28)
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--keep",
        action="store_true",
        help="leave the scratch folder and its warehouse running at the end, to profile a model on it",
    )
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="healthops-wf-pipeline-"))
    os.environ.update(
        HEALTHOPS_HOME=str(scratch / "home"),
        HEALTHOPS_LANDING=str(scratch / "landing"),
        HEALTHOPS_DBT_TARGET_PATH=str(scratch / "dbt"),
        HEALTHOPS_DBT_LOG_PATH=str(scratch / "dbt-logs"),
    )
    from healthops import config
    from healthops.cli import embedded_timekeeping
    from healthops.load.adt import load_adt_date
    from healthops.load.hr import load_hr_date
    from healthops.load.timekeeping import extract_timekeeping
    from healthops.pipeline import night_end
    from healthops.synthetic.adt_feed import generate
    from healthops.synthetic.workforce import generate_workforce
    from healthops.warehouse.connection import connect, embedded_server
    from healthops.warehouse.dbt_runner import run_dbt, target_path
    from healthops.warehouse.migrate import migrate
    from healthops.warehouse.roles import step_url

    server = embedded_server()
    results: dict = {"beds": system_beds(args.beds), "days": args.days}
    try:
        url = server.ensure_running().url
        migrate(url)
        loader, transformer = step_url(url, "loader"), step_url(url, "transformer")
        tk_url = embedded_timekeeping(url, create=True)  # as `healthops demo` makes it
        beds = results["beds"]
        landing = config.landing()
        days = [START + timedelta(days=i) for i in range(args.days)]
        staff = _timed(
            results,
            "generate staff (not healthops)",
            generate_workforce,
            landing,
            tk_url,
            START,
            args.days,
            seed=7,
            facilities=list(beds),
            beds=beds,
        )
        results["generated"] = {k: staff[k] for k in ("workers", "punches", "pay_lines", "edits", "deletions")}
        census_start = days[-args.census_days]
        _timed(
            results,
            "generate ADT (not healthops)",
            generate,
            landing,
            census_start,
            args.census_days,
            seed=7,
            facilities=list(beds),
            beds=beds,
        )
        print(json.dumps(results["generated"]), flush=True)

        def load_days(hr_days, adt_days):
            for d in hr_days:
                load_hr_date(loader, landing, d)
            for d in adt_days:
                load_adt_date(loader, landing, d)

        last = days[-1]
        history = days[:-1]
        _timed(
            results, "history: HR + ADT loads", load_days, history[-args.hr_days :], history[-args.census_days + 1 :]
        )
        ex = _timed(
            results,
            "history: timekeeping extract",
            extract_timekeeping,
            loader,
            tk_url,
            night_end(last - timedelta(days=1)),
        )
        results["history: timekeeping extract"]["rows"] = ex.as_dict()
        _timed(results, "history: dbt seed", run_dbt, ["seed"], transformer, capture=True)
        _timed(results, "history: dbt run (full)", run_dbt, ["run", "--select", SELECT], transformer, capture=True)
        _slowest_models(results, "history: dbt run (full)", target_path(transformer))

        _timed(results, "night: HR + ADT loads", load_days, [last], [last])
        ex = _timed(results, "night: timekeeping extract", extract_timekeeping, loader, tk_url, night_end(last))
        results["night: timekeeping extract"]["rows"] = ex.as_dict()
        _timed(results, "night: dbt run (incremental)", run_dbt, ["run", "--select", SELECT], transformer, capture=True)
        _slowest_models(results, "night: dbt run (incremental)", target_path(transformer))
        with connect(url) as conn:
            total, recomputed, first = conn.execute(
                """select count(*), count(*) filter (where computed_through_punch_loaded_at =
                                                     (select max(computed_through_punch_loaded_at)
                                                      from marts.fct_unit_staffing_interval)),
                          min(census_date) filter (where computed_through_punch_loaded_at =
                                                     (select max(computed_through_punch_loaded_at)
                                                      from marts.fct_unit_staffing_interval))
                   from marts.fct_unit_staffing_interval"""
            ).fetchone()
            counts = dict(
                conn.execute(
                    """select 'punch versions', count(*) from raw.tk_punches
                       union all select 'pay line versions', count(*) from raw.tk_pay_lines
                       union all select 'worked segments', count(*) from intermediate.int_workforce__worked_segments
                       union all select 'interval rows', count(*) from marts.fct_unit_staffing_interval
                       union all select 'daily rows', count(*) from marts.fct_unit_staffing_daily"""
                ).fetchall()
            )
        results["night: dbt run (incremental)"].update(
            interval_rows=total, recomputed=recomputed, recomputed_from=str(first)
        )
        results["warehouse"] = counts
        print(f"interval rows {total:,}; recomputed by the night {recomputed:,} (from {first})", flush=True)
        print(json.dumps(counts), flush=True)

        ex = _timed(results, "again: timekeeping extract", extract_timekeeping, loader, tk_url, night_end(last))
        results["again: timekeeping extract"]["rows"] = ex.as_dict()
        _timed(results, "again: dbt run", run_dbt, ["run", "--select", SELECT], transformer, capture=True)
        _slowest_models(results, "again: dbt run", target_path(transformer))
        results["reconciliation"] = _missing_from_warehouse(url, tk_url, night_end(last))
        print("source rows not in the warehouse:", json.dumps(results["reconciliation"]), flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
    finally:
        if args.keep:
            print(f"kept: HEALTHOPS_HOME={scratch / 'home'} (stop with `healthops warehouse stop`)", flush=True)
        else:
            server.stop()
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
