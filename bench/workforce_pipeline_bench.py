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

Prints each step's seconds and rows; ``--json`` writes them."""

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
SELECT = "+fct_unit_staffing_interval +fct_unit_staffing_monthly +int_timekeeping__punch_flags"


def _timed(results: dict, name: str, fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    results[name] = {"seconds": round(time.perf_counter() - t, 1)}
    print(f"{name:<34} {results[name]['seconds']:8.1f} s", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--beds", type=int, default=1000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--census-days", type=int, default=28)
    ap.add_argument("--hr-days", type=int, default=28)
    ap.add_argument("--json", type=Path)
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
    from healthops.warehouse.dbt_runner import run_dbt
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

        _timed(results, "night: HR + ADT loads", load_days, [last], [last])
        ex = _timed(results, "night: timekeeping extract", extract_timekeeping, loader, tk_url, night_end(last))
        results["night: timekeeping extract"]["rows"] = ex.as_dict()
        _timed(results, "night: dbt run (incremental)", run_dbt, ["run", "--select", SELECT], transformer, capture=True)
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
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
