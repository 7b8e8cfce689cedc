"""The events the first feed does not cover, a late cancel, and every kind of
malformed message, through the loader and dbt, against hand-computed counts.

  received 2026-04-06
    W1  A01 MS5 08:00, A07 to observation 14:00, A08 15:00 (no movement)
    W2  A01 TELE 09:00, A03 20:00                         (a same-day stay... until 04-08)
    W3  A04 ED 10:00, A06 to ICU 12:00
    bad.hl7: no PV1-19, unknown event, unparseable EVN-2, no PV1 segment, a line of
             garbage, and a last message cut off mid-segment
  received 2026-04-07
    W1  A03 10:00                                          (ends the observation stay)
    W3  A02 ICU->SDU 09:00, A12 cancel, A02 ICU->SDU 15:00 (the corrected transfer)
  received 2026-04-08
    W2  A13: cancels the 04-06 discharge two days late     (W2 was in TELE all along)
"""

from datetime import date

from healthops.load.adt import load_adt_date
from healthops.warehouse.connection import connect

from hl7_builders import build_message
from reporting_build import census_build

D1, D2, D3 = date(2026, 4, 6), date(2026, 4, 7), date(2026, 4, 8)
COLS = (
    "midnight_census, admissions, discharges, transfers_in, transfers_out, patient_days, "
    "observation_census, observation_days"
)


def m(event, cid, visit, when, **kw):
    return build_message(event, control_id=cid, visit=visit, msg_ts=when, **kw)


def write(landing, day, name, text):
    folder = landing / "adt" / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def mart(url):
    with connect(url) as conn:
        return {
            (u, d): tuple(v)
            for u, d, *v in conn.execute(f"select unit_code, census_date, {COLS} from marts.fct_census_daily")
        }


def test_conversions_updates_late_cancel_and_malformed(warehouse_url, tmp_path):
    landing = tmp_path
    write(
        landing,
        D1,
        "a.hl7",
        "".join(
            [
                m("A01", "W1a", "W1", "202604060800", unit="MS5"),
                m("A07", "W1b", "W1", "202604061400", unit="MS5", patient_class="O", patient_type="OBS"),
                m("A08", "W1c", "W1", "202604061500", unit="MS5", patient_class="O", patient_type="OBS"),
                m("A01", "W2a", "W2", "202604060900", unit="TELE"),
                m("A03", "W2b", "W2", "202604062000", unit="TELE"),
                m("A04", "W3a", "W3", "202604061000", unit="ED", patient_class="E"),
                m("A06", "W3b", "W3", "202604061200", unit="ICU"),
            ]
        ),
    )
    truncated = m("A01", "X6", "X6", "202604061100", unit="MS5")
    write(
        landing,
        D1,
        "bad.hl7",
        "".join(
            [
                m("A01", "X1", "", "202604061100", unit="MS5"),
                m("A99", "X2", "X2", "202604061100", unit="MS5"),
                m("A01", "X3", "X3", "202604061100", recorded_ts="2026-04-06", unit="MS5"),
                m("A01", "X4", "X4", "202604061100", unit="MS5", omit=["PV1"]),
                "THIS IS NOT HL7\r",
                truncated[: truncated.index("PV1") + 12],
            ]
        ),
    )
    write(
        landing,
        D2,
        "a.hl7",
        "".join(
            [
                m("A03", "W1d", "W1", "202604071000", unit="MS5", patient_class="O", patient_type="OBS"),
                m("A02", "W3c", "W3", "202604070900", unit="SDU", prior_unit="ICU"),
                m("A12", "W3d", "W3", "202604070930", unit="ICU", prior_unit="SDU"),
                m("A02", "W3e", "W3", "202604071500", unit="SDU", prior_unit="ICU"),
            ]
        ),
    )
    write(landing, D3, "a.hl7", m("A13", "W2c", "W2", "202604080800", unit="TELE"))

    for d in (D1, D2):
        load_adt_date(warehouse_url, landing, d)
        census_build(warehouse_url)
    before = mart(warehouse_url)
    #   census adm dis in out pdays obs obs-days
    assert before[("TELE", D1)] == (0, 1, 1, 0, 0, 1, 0, 0)  # a same-day stay, for now
    assert before[("TELE", D2)] == (0, 0, 0, 0, 0, 0, 0, 0)

    load_adt_date(warehouse_url, landing, D3)
    census_build(warehouse_url)
    got = mart(warehouse_url)
    expected = {
        ("MS5", D1): (0, 1, 1, 0, 0, 1, 1, 1),  # A07 ends the inpatient stay: a same-day stay;
        ("MS5", D2): (0, 0, 0, 0, 0, 0, 0, 0),  # the observation stay holds the 04-06 midnight
        ("TELE", D1): (1, 1, 0, 0, 0, 1, 0, 0),  # the late A13 restores W2 on every day since
        ("TELE", D2): (1, 0, 0, 0, 0, 1, 0, 0),
        ("TELE", D3): (1, 0, 0, 0, 0, 1, 0, 0),
        ("ICU", D1): (1, 1, 0, 0, 0, 1, 0, 0),  # A06 is the admission; the ED visit is not counted
        ("ICU", D2): (0, 0, 0, 0, 1, 0, 0, 0),  # the corrected transfer only
        ("SDU", D2): (1, 0, 0, 1, 0, 1, 0, 0),
        ("SDU", D3): (1, 0, 0, 0, 0, 1, 0, 0),
    }
    for key, want in expected.items():
        assert got[key] == want, key

    with connect(warehouse_url) as conn:
        rejected = [
            r
            for (r,) in conn.execute(
                "select reason from raw.rejected where file_path like '%bad.hl7' order by message_index"
            )
        ]
        batch = conn.execute(
            "select records_in, records_loaded, records_rejected from audit.load_batches "
            "where file_path like '%bad.hl7'"
        ).fetchone()
        enc = dict(conn.execute("select encounter_key, class_history from marts.fct_encounters"))
    assert batch == (6, 0, 6)
    assert len(rejected) == 6
    for needle in ("PV1-19", "A99", "EVN-2", "PV1", "not an HL7 message", "file ends mid-message"):
        assert any(needle in r for r in rejected), (needle, rejected)
    assert enc["NGH|W1"] == "inpatient > observation"
