"""Every rule of the catalog is proven to fail: some test module plants a known number
of violating rows and asserts exactly that count. A module says which rules it proves
in a module-level ``PROVES_RULES = {"CEN-...", ...}`` (a set literal); this test
reads those sets from the source with ``ast`` (importing the modules would pull in
their fixtures and GX) and compares their union with the catalog, so a rule added
to ``expectations/`` without a proof fails here, naming the rule."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from healthops.quality.rules import load_catalog

TESTS = Path(__file__).resolve().parents[1]
NAME = "PROVES_RULES"


def proves_rules(path: Path) -> set[str] | None:
    """The rule ids a test module declares in ``PROVES_RULES`` (None if it has none).
    Only a module-level assignment of a literal set of strings counts: anything else
    is refused, since a computed value could not be read without running the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = None
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if not any(isinstance(t, ast.Name) and t.id == NAME for t in targets):
            continue
        where = f"{path}:{node.lineno}"
        try:
            ids = ast.literal_eval(value)
        except ValueError:
            raise ValueError(f"{where}: {NAME} must be a set literal of rule ids") from None
        if not (isinstance(ids, set) and all(isinstance(i, str) for i in ids)):
            raise ValueError(f"{where}: {NAME} must be a set literal of rule ids, got {ids!r}")
        if found is not None:
            raise ValueError(f"{where}: {NAME} is assigned twice")
        found = ids
    return found


def proofs(root: Path = TESTS) -> dict[str, set[str]]:
    """{test module (relative to tests/): its PROVES_RULES} for every module that has one."""
    out = {}
    for path in sorted(root.rglob("test_*.py")):
        ids = proves_rules(path)
        if ids is not None:
            out[str(path.relative_to(root))] = ids
    return out


def test_every_catalog_rule_is_proven_to_fail():
    catalog = {r.id for rf in load_catalog() for r in rf.rules}
    assert catalog
    by_module = proofs()
    proven = set().union(*by_module.values())
    unproven = sorted(catalog - proven)
    unknown = sorted(proven - catalog)
    assert not unproven and not unknown, (
        f"rules with no exact-count failure test (declare them in a test module's {NAME}): "
        f"{', '.join(unproven) or 'none'}; "
    ) + (
        f"{NAME} names ids that are not in the catalog: "
        + (", ".join(f"{i} ({', '.join(m for m, ids in by_module.items() if i in ids)})" for i in unknown) or "none")
    )


def test_the_reader_takes_literal_sets_only(tmp_path):
    ok = tmp_path / "test_ok.py"
    ok.write_text(
        'PROVES_RULES: set[str] = {"R-1", "R-2"}\n'
        'def test_x():\n    PROVES_RULES = {"R-9"}  # not module level: ignored\n'
    )
    assert proves_rules(ok) == {"R-1", "R-2"}
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "test_none.py").write_text("RULES = {'R-3'}\n")
    assert proofs(tmp_path) == {"test_ok.py": {"R-1", "R-2"}}
    for text in (
        'PROVES_RULES = {f"R-{i}" for i in range(3)}\n',
        'PROVES_RULES = ["R-1"]\n',
        'PROVES_RULES = {"R-1"}\nPROVES_RULES = {"R-2"}\n',
    ):
        bad = tmp_path / "test_bad.py"
        bad.write_text(text)
        with pytest.raises(ValueError, match=NAME):
            proves_rules(bad)
