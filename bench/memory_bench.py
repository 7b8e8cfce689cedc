"""Memory benchmark: a year of a ~500-bed hospital's ADT feed through ``parse_file``,
with peak RSS measured in fresh subprocesses.

    .venv/bin/python bench/memory_bench.py [--days 365] [--keep DIR] [--json out.json]

The year (deterministic): the generator cannot simulate a whole year of a 500-bed
hospital in reasonable time (its bed search grows with the year's history: 90 days
already take over a minute), so ``--template-days`` (14) days are simulated with
``generate`` (beds x4.5, arrivals x7, as in parser_bench.py) and replayed
``days / 14`` times. Each replay ("cycle" k) rewrites, with C-speed ``re.sub`` /
``bytes.replace`` on the file bytes, so every message stays unique and dated in
its own fortnight:

* control ids ``NGHnnnnnnnn`` -> ``NGHkknnnnnnnn`` (MSH-10), visit numbers
  ``Vnnnnnnn`` -> ``Vkknnnnnnn`` (PV1-19), MRNs ``Mnnnnnnn`` -> ``Mkknnnnnnn``;
* every ``YYYYMMDD`` date of the template fortnight -> the same day + 14*k days (times
  keep their UTC offsets, so a few offsets are off by an hour across DST: still valid).

Files are written one at a time (one day's file in memory at a time).

Measured: (1) all the year's files parsed with ``parse_file`` in one fresh
subprocess: messages, rejections, seconds, peak RSS (``ru_maxrss``); (2) one file
holding ~1/10 of the year and one holding the whole year (10x the bytes), each
parsed in a fresh subprocess; (3) the RSS of a subprocess that only imports the
parser (the interpreter's own floor). Streaming holds if (2) gives the same peak
for 1x and 10x and the peak is far below the bytes parsed.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parser_bench import SCALE, machine, units_500  # noqa: E402

START = date(2024, 1, 1)
_CONTROL = re.compile(rb"\|NGH(\d{8})\|")
_VISIT = re.compile(rb"\|V(\d{7})\^")
_MRN = re.compile(rb"([|~])M(\d{7})\^")


# --------------------------------------------------------------------------- the year


def build_year(out: Path, days: int, template_days: int, seed: int = 7) -> dict:
    from healthops.synthetic.adt_feed import generate

    tmpl_root = out / "_template"
    summary = generate(tmpl_root, START, template_days, seed=seed, scale=SCALE, units=units_500())
    by_day: dict[int, list[Path]] = {}
    for p in map(Path, summary["paths"]):
        by_day.setdefault((date.fromisoformat(p.parent.name) - START).days, []).append(p)
    tmpl_dates = [(START + timedelta(days=i)).strftime("%Y%m%d").encode() for i in range(template_days + 3)]
    files = 0
    total = 0
    for i in range(days):
        k, d = divmod(i, template_days)
        shift = timedelta(days=template_days * k)
        day = START + timedelta(days=i)
        folder = out / "adt" / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        for n, src in enumerate(sorted(by_day.get(d, [])), 1):
            data = src.read_bytes()
            if k:
                tag = b"%02d" % k
                data = _CONTROL.sub(rb"|NGH" + tag + rb"\1|", data)
                data = _VISIT.sub(rb"|V" + tag + rb"\1^", data)
                data = _MRN.sub(rb"\1M" + tag + rb"\2^", data)
                # two passes through placeholders so that a shifted date is never shifted again
                for j, old in enumerate(tmpl_dates):
                    data = data.replace(old, b"\x01%03d\x01" % j)
                for j, old in enumerate(tmpl_dates):
                    new = (datetime.strptime(old.decode(), "%Y%m%d") + shift).strftime("%Y%m%d").encode()
                    data = data.replace(b"\x01%03d\x01" % j, new)
            path = folder / f"adt_{day:%Y%m%d}_{n:02d}.hl7"
            path.write_bytes(data)
            files += 1
            total += len(data)
    shutil.rmtree(tmpl_root)
    return {"files": files, "bytes": total, "template_messages": summary["messages"], "template_days": template_days}


def concat(paths: list[Path], dest: Path) -> int:
    """Concatenate files into one, streaming (1 MiB at a time)."""
    n = 0
    with open(dest, "wb") as out:
        for p in paths:
            with open(p, "rb") as fh:
                while block := fh.read(1 << 20):
                    out.write(block)
                    n += len(block)
    return n


# --------------------------------------------------------------------------- child processes


def child(paths: list[str]) -> None:
    """Runs in a fresh interpreter: parse the files, print counts and peak RSS as JSON."""
    from healthops.sources.adt.parser import parse_file
    from healthops.sources.adt.schema import Rejection

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    files = []
    for p in paths:
        pp = Path(p)
        files.extend(sorted(pp.rglob("*.hl7")) if pp.is_dir() else [pp] if pp.exists() else [])
    messages = rejected = size = 0
    curve = []  # (items parsed, peak RSS so far) every 50,000 items
    t0 = time.perf_counter()
    for f in files:
        size += f.stat().st_size
        for item in parse_file(f):
            if isinstance(item, Rejection):
                rejected += 1
            else:
                messages += 1
            if (messages + rejected) % 50_000 == 0:
                curve.append((messages + rejected, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
    secs = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "files": len(files),
                "bytes": size,
                "messages": messages,
                "rejected": rejected,
                "seconds": secs,
                "rss_after_import_kib": base,
                "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "curve": curve,
            }
        )
    )


def run_child(*paths) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *map(str, paths)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--template-days", type=int, default=14)
    ap.add_argument("--keep", type=Path, help="write the year here and keep it (default: a temp dir)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child)
        return {}

    tmp = Path(tempfile.mkdtemp(prefix="healthops-membench-")) if args.keep is None else args.keep
    try:
        t0 = time.perf_counter()
        year = build_year(tmp, args.days, args.template_days)
        build_s = time.perf_counter() - t0
        files = sorted((tmp / "adt").rglob("*.hl7"))
        small, big = tmp / "tenth.hl7", tmp / "year.hl7"
        concat(files[: max(1, len(files) // 10)], small)
        concat(files, big)

        floor = run_child(tmp / "adt" / "none")  # imports only, parses nothing
        all_files = run_child(tmp / "adt")
        one_small = run_child(small)
        one_big = run_child(big)
        big.unlink()
        small.unlink()
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)

    mib = 1024.0
    info = machine()
    lines = [
        f"## ADT parser memory benchmark ({time.strftime('%Y-%m-%d')})\n",
        f"- input: {args.days} days of a ~500-bed hospital: {year['files']} files, "
        f"{year['bytes'] / 1e6:.1f} MB, {all_files['messages'] + all_files['rejected']:,} messages "
        f"(a {args.template_days}-day generator run of {year['template_messages']:,} messages replayed "
        f"with new ids and dates; built in {build_s:.0f} s)",
        f"- Python {info['python']}, {info['nproc']} CPU(s): {info['cpu']}; each row is a fresh "
        f"subprocess, peak RSS = `ru_maxrss`\n",
        "| run | bytes parsed | messages (rejected) | seconds | msg/s | peak RSS | peak RSS - import-only RSS |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    floor_rss = floor["peak_rss_kib"]
    for label, r in (
        ("import only, nothing parsed", floor),
        (f"the year's {year['files']} files, one after another", all_files),
        ("one file: first 1/10 of the year's files concatenated (1x)", one_small),
        ("one file: the whole year concatenated (10x)", one_big),
    ):
        n = r["messages"] + r["rejected"]
        lines.append(
            f"| {label} | {r['bytes'] / 1e6:,.1f} MB | {n:,} ({r['rejected']:,}) | {r['seconds']:.1f} | "
            f"{n / r['seconds'] if r['seconds'] and n else 0:,.0f} | {r['peak_rss_kib'] / mib:.1f} MiB | "
            f"{(r['peak_rss_kib'] - floor_rss) / mib:.1f} MiB |"
        )
    growth = (one_big["peak_rss_kib"] - one_small["peak_rss_kib"]) / mib
    lines.append("")
    lines.append(
        f"10x the bytes in one file ({one_small['bytes'] / 1e6:.1f} MB -> {one_big['bytes'] / 1e6:.1f} MB) "
        f"changes peak RSS by {growth:+.1f} MiB; the year's {all_files['bytes'] / 1e6:.0f} MB parse in "
        f"{all_files['peak_rss_kib'] / mib:.0f} MiB peak RSS "
        f"({(all_files['peak_rss_kib'] - floor_rss) / mib:.1f} MiB above the interpreter "
        "with the parser imported)."
    )
    if one_big["curve"]:
        lines.append("")
        lines.append(
            "Peak RSS while parsing the 10x file (items parsed: peak RSS so far): "
            + ", ".join(f"{n // 1000}k: {kib / mib:.1f}" for n, kib in one_big["curve"][::2])
            + " MiB."
        )
    print("\n".join(lines))
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": info,
        "year": year,
        "import_only": floor,
        "all_files": all_files,
        "one_file_1x": one_small,
        "one_file_10x": one_big,
        "peak_growth_10x_mib": growth,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
