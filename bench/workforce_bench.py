"""Workforce generator benchmark: a 1,000-bed system's year of timekeeping into a
database, as the demo and the load tests fill it (``generate_workforce`` with a
``tk_url``: rows built day by day, written with COPY).

    .venv/bin/python bench/workforce_bench.py [--days 365] [--beds 1000] [--url URL] [--budget 240]

The system: the two facilities of the units seed (NGH and SGH) scaled to ``--beds``
staffed inpatient beds between them in proportion to their seeded beds (units split
above 40 beds, as ``adt_feed.scale_units`` does). The database: ``--url`` (or
``HEALTHOPS_TIMEKEEPING_URL``), else a throwaway embedded PostgreSQL cluster.

A probe of 14 days is timed first; when the full ``--days`` would take longer than
``--budget`` seconds, only the probe is reported, with the extrapolation to ``--days``.
Printed: punches, pay lines, seconds and punches per second (generation and COPY
together, HR snapshots excluded: they are files of the last day's size per day)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

from healthops.synthetic.adt_feed import load_units
from healthops.synthetic.workforce import generate_workforce

START = date(2026, 7, 1)


def system_beds(total: int) -> dict[str, int]:
    rows = [r for r in load_units(None) if r["unit_type"] != "emergency"]
    seeded: dict[str, int] = {}
    for r in rows:
        seeded[r["facility_code"]] = seeded.get(r["facility_code"], 0) + int(r["staffed_beds"])
    whole = sum(seeded.values())
    out = {c: round(total * n / whole) for c, n in seeded.items()}
    first = next(iter(out))
    out[first] += total - sum(out.values())
    return out


def _run(url: str, days: int, beds: dict, hr_root: Path) -> dict:
    t = time.perf_counter()
    s = generate_workforce(hr_root, url, START, days, seed=7, facilities=list(beds), beds=beds, gaps=False)
    return {
        "days": days,
        "seconds": time.perf_counter() - t,
        "punches": s["punches"],
        "pay_lines": s["pay_lines"],
        "workers": s["workers"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--beds", type=int, default=1000)
    ap.add_argument("--url", default=os.environ.get("HEALTHOPS_TIMEKEEPING_URL"))
    ap.add_argument("--budget", type=float, default=240.0, help="seconds the full run may take")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    beds = system_beds(args.beds)
    scratch = Path(tempfile.mkdtemp(prefix="healthops-wf-bench-"))
    server = None
    try:
        url = args.url
        if not url:
            from healthops.warehouse.embedded import EmbeddedServer

            server = EmbeddedServer(scratch / "pg")
            url = server.ensure_running().url
        probe = _run(url, min(14, args.days), beds, scratch / "landing")
        rate = probe["punches"] / probe["seconds"]
        print(f"{args.beds} beds {beds}: {probe['workers']} workers")
        print(
            f"probe {probe['days']} days: {probe['punches']:,} punches, {probe['pay_lines']:,} pay lines "
            f"in {probe['seconds']:.1f} s = {rate:,.0f} punches/s (HR files included)"
        )
        estimate = probe["seconds"] * args.days / probe["days"]
        result = {"beds": beds, "probe": probe}
        if args.days > probe["days"] and estimate <= args.budget:
            full = _run(url, args.days, beds, scratch / "landing_full")
            result["full"] = full
            print(
                f"full {args.days} days: {full['punches']:,} punches, {full['pay_lines']:,} pay lines in "
                f"{full['seconds']:.1f} s = {full['punches'] / full['seconds']:,.0f} punches/s"
            )
        elif args.days > probe["days"]:
            punches = probe["punches"] * args.days / probe["days"]
            result["extrapolated"] = {"days": args.days, "punches": punches, "seconds": estimate}
            print(
                f"extrapolated to {args.days} days: ~{punches:,.0f} punches in ~{estimate:.0f} s "
                f"(over the {args.budget:.0f} s budget: not run)"
            )
        if args.json:
            args.json.write_text(json.dumps(result, indent=2, default=str))
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
