"""Run the ADT parser benchmarks (``make bench``): throughput against python-hl7,
then memory over a year of feed. Each runs in its own interpreter; the Markdown
tables go to stdout, the raw figures to ``--out`` (default: a temp dir) as JSON."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="directory for parser_bench.json and memory_bench.json")
    ap.add_argument("--quick", action="store_true", help="smaller inputs (a smoke run, not figures to quote)")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="healthops-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    runs = [
        ["parser_bench.py", "--json", str(out / "parser_bench.json")]
        + (["--days", "2", "--repeats", "1"] if args.quick else []),
        ["memory_bench.py", "--json", str(out / "memory_bench.json")] + (["--days", "60"] if args.quick else []),
    ]
    for script, *rest in runs:
        rc = subprocess.call([sys.executable, str(HERE / script), *rest])
        if rc:
            return rc
        print()
    print(f"(JSON figures in {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
