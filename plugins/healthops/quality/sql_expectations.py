"""``UnexpectedRowsShareExpectation``: GX's ``UnexpectedRowsExpectation`` with a
denominator and a tolerated share, so a SQL rule reports what every other rule
reports (rows evaluated, rows violating, their share) and passes when
``violating / evaluated <= threshold`` (the rule catalog's threshold, default 0).

- ``unexpected_rows_query``: the violating rows (GX's own metric; one row per
  violation, so its row count *is* the rule's violating-row count).
- ``evaluated_rows_query``: the rows the rule examined (the denominator).
- ``observation_query`` (optional): one row worth keeping whether the rule passes
  or not (e.g. the day's rejected-message rate), stored as ``details.observation``.

The first ``partial_unexpected_count`` violating rows (GX fetches at most 200)
are kept as ``details.unexpected_rows``: the evidence behind the finding. Queries
must select keys and codes, never PHI (MRN, name, birth date).

Imported by ``healthops.quality.rules`` (through ``import_gx``): defining the
classes registers the expectation and its metrics with GX.
"""

from __future__ import annotations

from fractions import Fraction
from string import Formatter
from typing import Any, ClassVar, Optional, Tuple, Union

from great_expectations.compatibility import pydantic
from great_expectations.core.result_format import ResultFormat
from great_expectations.expectations.core.unexpected_rows_expectation import UnexpectedRowsExpectation
from great_expectations.expectations.metrics.query_metrics.query_row_count.query_row_count import (
    QueryRowCount,
)
from great_expectations.expectations.metrics.query_metrics.query_table.query_table import QueryTable
from great_expectations.expectations.registry import get_metric_kwargs
from great_expectations.validator.metric_configuration import MetricConfiguration

EVALUATED_METRIC = "evaluated_rows_query.row_count"
OBSERVATION_METRIC = "observation_query.table"
DEFAULT_PARTIAL = 20


class EvaluatedRowsQueryRowCount(QueryRowCount):
    """Row count of ``evaluated_rows_query`` (``{batch}`` substituted as GX does)."""

    metric_name = EVALUATED_METRIC
    value_keys = ("evaluated_rows_query",)
    query_param_name: ClassVar[str] = "evaluated_rows_query"


class ObservationQueryTable(QueryTable):
    """Rows of ``observation_query`` (at most GX's MAX_RESULT_RECORDS)."""

    metric_name = OBSERVATION_METRIC
    value_keys = ("observation_query",)
    query_param_name: ClassVar[str] = "observation_query"


def _check_braces(query: Optional[str]) -> Optional[str]:
    if query is None:
        return None
    try:
        list(Formatter().parse(query))
    except ValueError as exc:
        raise ValueError(f"query has an unpaired or malformed brace: {exc}") from exc
    return query.rstrip("; \t\r\n\v\f")


class UnexpectedRowsShareExpectation(UnexpectedRowsExpectation):
    """Fails when the unexpected rows are more than ``threshold`` of the evaluated rows.

    With threshold 0 (the default) this is ``UnexpectedRowsExpectation``: any
    unexpected row fails. Violations with no evaluated rows (a denominator that
    does not cover its numerator) fail whatever the threshold.
    """

    evaluated_rows_query: str = pydantic.Field(description="SQL returning the rows the rule examined.")
    observation_query: Optional[str] = pydantic.Field(
        default=None, description="SQL whose first row is kept in the result, pass or fail."
    )
    threshold: float = pydantic.Field(
        default=0.0, ge=0.0, lt=1.0, description="Share of evaluated rows allowed to be unexpected."
    )

    metric_dependencies: ClassVar[Tuple[str, ...]] = (
        "unexpected_rows_query.table",
        "unexpected_rows_query.row_count",
        EVALUATED_METRIC,
    )
    success_keys: ClassVar[Tuple[str, ...]] = (
        "unexpected_rows_query",
        "evaluated_rows_query",
        "observation_query",
        "threshold",
    )

    @pydantic.validator("evaluated_rows_query", "observation_query")
    def _validate_other_queries(cls, query: Optional[str]) -> Optional[str]:
        return _check_braces(query)

    class Config:
        title = "Custom Expectation with SQL and a tolerated share"

    def get_validation_dependencies(self, execution_engine=None, runtime_configuration=None):
        deps = super().get_validation_dependencies(
            execution_engine=execution_engine, runtime_configuration=runtime_configuration
        )
        if self.configuration.kwargs.get("observation_query"):
            kw = get_metric_kwargs(
                OBSERVATION_METRIC, configuration=self.configuration, runtime_configuration=runtime_configuration
            )
            deps.set_metric_configuration(
                metric_name=OBSERVATION_METRIC,
                metric_configuration=MetricConfiguration(
                    metric_name=OBSERVATION_METRIC,
                    metric_domain_kwargs=kw["metric_domain_kwargs"],
                    metric_value_kwargs=kw["metric_value_kwargs"],
                ),
            )
        return deps

    def _validate(
        self, metrics: dict, runtime_configuration: dict | None = None, execution_engine=None
    ) -> Union[dict, Any]:
        fmt = self._get_result_format(runtime_configuration=runtime_configuration)
        if isinstance(fmt, dict):
            result_format = fmt.get("result_format", ResultFormat.SUMMARY)
            partial = fmt.get("partial_unexpected_count", DEFAULT_PARTIAL)
        else:
            result_format, partial = fmt, DEFAULT_PARTIAL

        rows = metrics["unexpected_rows_query.table"] or []
        unexpected = int(metrics["unexpected_rows_query.row_count"])
        evaluated = int(metrics[EVALUATED_METRIC])
        threshold = Fraction(str(self.threshold))  # exact: 1/20 <= 0.05 holds
        if evaluated:
            share: Optional[Fraction] = Fraction(unexpected, evaluated)
        else:
            share = Fraction(0) if unexpected == 0 else None
        success = share is not None and share <= threshold
        if result_format == ResultFormat.BOOLEAN_ONLY:
            return {"success": success}

        details: dict[str, Any] = {
            "unexpected_rows": rows if result_format == ResultFormat.COMPLETE else rows[:partial],
        }
        if OBSERVATION_METRIC in metrics:
            obs = metrics[OBSERVATION_METRIC] or []
            details["observation"] = obs[0] if obs else None
        return {
            "success": success,
            "result": {
                "observed_value": unexpected,  # what GX's renderer shows: "N unexpected rows"
                "element_count": evaluated,
                "unexpected_count": unexpected,
                "unexpected_percent": float(share * 100) if share is not None else None,
                "threshold": float(threshold),
                "details": details,
            },
        }
