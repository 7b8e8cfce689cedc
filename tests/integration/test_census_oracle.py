"""The mart agrees with the independent count for every unit and day of a generated
feed of a week across the end of daylight saving time (with cancels, late messages, a duplicate and
malformed messages), loaded and built day by day as the nightly runs do: the
incremental models end where a full rebuild from scratch ends, to the row."""

from datetime import date, timedelta

from healthops.load.adt import load_adt_date
from healthops.synthetic.adt_feed import generate
from healthops.warehouse.connection import connect
from healthops.warehouse.dbt_runner import run_dbt
from healthops.warehouse.roles import step_url

from census_oracle import reference_from_landing
from reporting_build import WORKFORCE_MODELS, census_build

FIELDS = ("midnight_census", "admissions", "discharges", "transfers_in", "transfers_out", "patient_days")


def test_mart_equals_reference_over_a_week(warehouse_url, tmp_path):
    start, days = date(2026, 10, 29), 7  # spans the end of daylight saving time (Nov 1)
    summary = generate(tmp_path, start, days, seed=5)
    assert summary["late"] and summary["malformed"] and summary["duplicates"]
    end = start + timedelta(days=days - 1)
    loaded = rejected = duplicate = total_in = 0
    dbt_login = step_url(warehouse_url, "transformer")  # as the nightly builds below log in
    run_dbt(["seed"], dbt_login, capture=True)  # the reference data, as the first night loads it
    for i in range(days):
        s = load_adt_date(warehouse_url, tmp_path, start + timedelta(days=i)).as_dict()
        total_in += s["records_in"]
        loaded += s["records_loaded"]
        rejected += s["records_rejected"]
        duplicate += s["records_duplicate"]
        # the census models, incremental after the first night (the dbt tests run in the
        # builds below; the feed has no staff: the workforce models are left out)
        run_dbt(["run", "--exclude", f"path:models/reporting {WORKFORCE_MODELS}"], dbt_login, capture=True)
    assert total_in == summary["messages"] == loaded + rejected + duplicate
    # the generator resends a message as it was (an interface engine's resend): a duplicate, not a rejection
    assert (rejected, duplicate) == (summary["malformed"], summary["duplicates"])
    incremental = _marts(warehouse_url)

    with connect(warehouse_url) as conn:
        rows = conn.execute(
            f"select facility_code, unit_code, census_date, {', '.join(FIELDS)} from marts.fct_census_daily"
        ).fetchall()
    got = {(f, u, d): dict(zip(FIELDS, v)) for f, u, d, *v in rows}
    expected = reference_from_landing(tmp_path, start, end)

    assert {d for _, _, d in got} == {start + timedelta(days=i) for i in range(days)}
    mismatches = [
        (k, got[k], {f: expected[k][f] for f in FIELDS}) for k in got if got[k] != {f: expected[k][f] for f in FIELDS}
    ]
    assert mismatches == []
    # units the reference saw that the mart does not list are non-inpatient (the ED): all zero
    for key in set(expected) - set(got):
        assert not any(expected[key][f] for f in FIELDS), key
    assert sum(r["patient_days"] for r in got.values()) > 300  # a real hospital's worth of days

    # the nights' build passes its tests; a full rebuild from scratch gives exactly what
    # the nights built incrementally (building again with nothing new changes nothing:
    # tests/integration/test_faults.py runs a night twice and compares every relation)
    census_build(warehouse_url)
    assert _marts(warehouse_url) == incremental
    census_build(warehouse_url, "--full-refresh")
    assert _marts(warehouse_url) == incremental


MARTS = ("fct_census_daily", "fct_census_interval", "fct_encounters", "fct_census_period", "dim_units")


def _marts(url):
    """Every mart's rows, less the incremental watermark (which records when a row was
    computed, so it differs by design between nightly and one-shot builds)."""
    out = {}
    with connect(url) as conn:
        for m in MARTS:
            cols = [
                c
                for (c,) in conn.execute(
                    "select column_name from information_schema.columns where table_schema = 'marts' "
                    "and table_name = %s and column_name <> 'computed_through_loaded_at' order by ordinal_position",
                    (m,),
                )
            ]
            out[m] = conn.execute(f"select {', '.join(cols)} from marts.{m} order by 1, 2, 3, 4").fetchall()
    return out
