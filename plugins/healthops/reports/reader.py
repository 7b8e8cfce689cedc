"""The one way a report reads the warehouse: selects from the dbt reporting layer.

Every figure a report shows is computed in a ``rpt_*`` model of
``dbt_project/models/reporting/`` (one model per table or chart, at the grain it is
shown). A report module only selects rows from those models, formats them,
suppresses small cells, charts and renders. It gets a ``ReportReader``, never a
connection.

The allow-list comes from the models' dbt metadata: every column of the reporting
layer carries ``config.meta.phi`` (true or false) in its yml; the reader serves only
the models its report declares (``kind.models``, the report's dbt exposure) and, of
them, only the columns marked ``phi: false``. Asking for anything else is an error
before any SQL runs.

One aggregate is allowed, because a recipient's filter is only known at send time:
``sums`` adds up the columns a model declares ``additive`` (a nurse manager's units
are the sum of their rows) and recomputes the columns it declares as a ``ratio`` of
two additive ones with the formula of the ``percent`` macro. Everything else is
computed in dbt.

The reader remembers which column every text value came from (``strings``), for the
PHI scan before a report is sent (``healthops.reports.phi``), and keeps the SQL it
issued (``queries``), so a test can show a report issued nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from psycopg import sql

from healthops import config

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
_OPS = {"=", "<", "<=", ">", ">=", "in", "between"}
REPORTING_DIR = "models/reporting"


class ColumnNotAllowed(PermissionError):
    """A report asked for a model or column it may not read."""


@dataclass(frozen=True)
class Ratio:
    numerator: str
    denominator: str
    digits: int


@dataclass(frozen=True)
class ModelSpec:
    """A reporting-layer model as its yml describes it."""

    name: str
    schema: str
    columns: Mapping[str, bool]  # column -> is PHI
    additive: frozenset[str] = frozenset()
    ratios: Mapping[str, Ratio] = field(default_factory=dict)

    @property
    def readable(self) -> frozenset[str]:
        return frozenset(c for c, phi in self.columns.items() if phi is False)


def column_meta(column: Mapping) -> dict:
    """A column's meta, where dbt 1.10+ keeps it (``config.meta``) or at the top level."""
    return {**(column.get("meta") or {}), **((column.get("config") or {}).get("meta") or {})}


def _schema_of(project: Path) -> str:
    conf = yaml.safe_load((project / "dbt_project.yml").read_text(encoding="utf-8"))
    return conf["models"]["healthops"]["reporting"]["+schema"]


@lru_cache(maxsize=4)
def _load(project: str) -> dict[str, ModelSpec]:
    root = Path(project)
    schema = _schema_of(root)
    models: dict[str, ModelSpec] = {}
    for path in sorted((root / REPORTING_DIR).rglob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for m in doc.get("models") or []:
            cols: dict[str, bool] = {}
            additive, ratios = set(), {}
            for c in m.get("columns") or []:
                meta = column_meta(c)
                phi = meta.get("phi")
                if not isinstance(phi, bool):
                    raise ValueError(
                        f"{path.name}: {m['name']}.{c['name']} has no meta phi: true|false; "
                        "a reporting column must say whether it is PHI"
                    )
                cols[c["name"]] = phi
                if meta.get("additive"):
                    additive.add(c["name"])
                if meta.get("ratio"):
                    r = meta["ratio"]
                    ratios[c["name"]] = Ratio(r["numerator"], r["denominator"], int(r.get("digits", 1)))
            models[m["name"]] = ModelSpec(m["name"], schema, cols, frozenset(additive), ratios)
    return models


def reporting_models(project_dir: Path | None = None) -> dict[str, ModelSpec]:
    """The reporting layer's models by name, from their yml (cached per project)."""
    return _load(str(Path(project_dir or config.DBT_PROJECT_DIR).resolve()))


class ReportReader:
    """Selects from the reporting models one report may read (``allow``: model names),
    their non-PHI columns only."""

    def __init__(self, conn, allow: Iterable[str], models: Mapping[str, ModelSpec] | None = None):
        self._conn = conn
        catalog = models if models is not None else reporting_models()
        unknown = [m for m in allow if m not in catalog]
        if unknown:
            raise ColumnNotAllowed(f"not reporting-layer models: {', '.join(unknown)}")
        self._models = {m: catalog[m] for m in allow}
        self.strings: list[tuple[str, str]] = []
        self.queries: list[str] = []

    def _spec(self, model: str, columns: Iterable[str]) -> ModelSpec:
        spec = self._models.get(model)
        if spec is None:
            raise ColumnNotAllowed(f"{model} is not a model this report reads (its exposure's depends_on)")
        bad = sorted({c for c in columns if c not in spec.readable})
        if bad:
            raise ColumnNotAllowed(f"{model}: column(s) {', '.join(bad)} are PHI or not in the model's yml")
        return spec

    @staticmethod
    def _where(where: Mapping[str, Any]) -> tuple[list, list]:
        clauses, params = [], []
        for col, cond in where.items():
            op, value = cond if isinstance(cond, tuple) else ("=", cond)
            if op not in _OPS:
                raise ValueError(f"unsupported operator {op!r}")
            ident = sql.Identifier(col)
            if op == "in":
                clauses.append(sql.SQL("{} = any(%s)").format(ident))
                params.append(list(value))
            elif op == "between":
                clauses.append(sql.SQL("{} between %s and %s").format(ident))
                params += list(value)
            else:
                clauses.append(sql.SQL("{} " + op + " %s").format(ident))
                params.append(value)
        return clauses, params

    def _run(
        self,
        model: str,
        spec: ModelSpec,
        select: sql.Composable,
        names: list[str],
        where: Mapping[str, Any],
        group_by: list[str],
        order_by: list[str],
    ) -> list[dict]:
        clauses, params = self._where(where)
        query = sql.SQL("select {} from {}").format(select, sql.Identifier(spec.schema, model))
        if clauses:
            query += sql.SQL(" where ") + sql.SQL(" and ").join(clauses)
        if group_by:
            query += sql.SQL(" group by ") + sql.SQL(", ").join(sql.Identifier(c) for c in group_by)
        if order_by:
            query += sql.SQL(" order by ") + sql.SQL(", ").join(sql.Identifier(c) for c in order_by)
        self.queries.append(query.as_string(self._conn))
        rows = [dict(zip(names, r)) for r in self._conn.execute(query, params).fetchall()]
        for row in rows:
            for col, value in row.items():
                if isinstance(value, str):
                    self.strings.append((f"{spec.schema}.{model}.{col}", value))
        return rows

    def select(
        self, model: str, columns: list[str], where: Mapping[str, Any] | None = None, order_by: list[str] | None = None
    ) -> list[dict]:
        """``select columns from model where ... order by ...``; ``where`` maps a column
        to a value (equality) or to ``(op, value)`` with op one of = < <= > >= in between
        (``between`` takes a pair)."""
        where, order_by = dict(where or {}), list(order_by or [])
        spec = self._spec(model, [*columns, *where, *order_by])
        select = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        return self._run(model, spec, select, list(columns), where, [], order_by)

    def sums(
        self, model: str, columns: list[str], where: Mapping[str, Any] | None = None, group_by: list[str] | None = None
    ) -> list[dict]:
        """The sums of ``columns`` over the rows ``where`` selects, one row per
        ``group_by`` value (ordered by it). A column must be ``additive`` or a ``ratio``
        of two additive columns (recomputed from their sums, as the ``percent`` macro
        does). A sum is null when any of its rows lacks the value (a total of unknown
        parts is unknown), and 0 over no rows."""
        where, group_by = dict(where or {}), list(group_by or [])
        spec = self._spec(model, [*columns, *where, *group_by])
        parts = [sql.Identifier(c) for c in group_by]
        for c in columns:
            if c in spec.ratios:
                r = spec.ratios[c]
                if not {r.numerator, r.denominator} <= spec.additive:
                    raise ColumnNotAllowed(f"{model}.{c}: its ratio's columns are not additive")
                parts.append(
                    sql.SQL("round(100.0 * sum({n})::numeric / nullif(sum({d})::numeric, 0), {k})").format(
                        n=sql.Identifier(r.numerator), d=sql.Identifier(r.denominator), k=sql.Literal(r.digits)
                    )
                )
            elif c in spec.additive:
                parts.append(
                    sql.SQL("case when count({c}) = count(*) then coalesce(sum({c}), 0) end").format(
                        c=sql.Identifier(c)
                    )
                )
            else:
                raise ColumnNotAllowed(f"{model}.{c} is not additive (its yml meta): it cannot be summed")
        return self._run(model, spec, sql.SQL(", ").join(parts), [*group_by, *columns], where, group_by, group_by)

    def note(self, where: str, values: Iterable[Any]) -> None:
        """Record text values that reached the context another way (the rule catalog's
        descriptions), so the PHI scan covers them under their own name."""
        for v in values:
            if isinstance(v, str):
                self.strings.append((where, v))
