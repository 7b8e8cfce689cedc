"""`make test` runs on two workers with `--dist loadgroup`: tests that share a module
fixture carry one xdist_group (tests/conftest.py), so that fixture (a warehouse filled
and built with dbt) is built once. Some pytest and pytest-xdist releases do not work
together there and drop the groups without a word (pytest 9.2 with xdist 3.8:
pytest-dev/pytest-xdist#1386); the suite then still passes, only slower. This runs the
installed pair on a throwaway project and fails when grouped tests are split."""

from __future__ import annotations

import re
import subprocess
import sys


def test_grouped_tests_run_on_one_worker(tmp_path):
    tests = "".join(
        f'\n@pytest.mark.xdist_group("{g}")\ndef test_{g}_{i}():\n    pass\n' for g in ("a", "b") for i in range(4)
    )
    (tmp_path / "test_groups.py").write_text("import pytest\n" + tests)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = re.findall(r"\[(gw\d)\].*PASSED \S*::test_([ab])_\d", proc.stdout)
    assert len(ran) == 8, proc.stdout
    workers = {g: {w for w, group in ran if group == g} for g in ("a", "b")}
    assert all(len(w) == 1 for w in workers.values()), f"groups split across workers: {workers}"
