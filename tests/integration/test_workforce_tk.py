"""The workforce generator fills a real timekeeping database: the vendor's tables,
every row the in-memory build gives, and the same content when run again."""

from __future__ import annotations

from datetime import date

import psycopg

from healthops.synthetic.workforce import build_workforce, generate_workforce
from healthops.warehouse.connection import libpq_url

START = date(2026, 11, 2)


def _content(url: str) -> tuple:
    with psycopg.connect(libpq_url(url)) as conn:
        punches = conn.execute("select * from tk.punch order by punch_id").fetchall()
        pays = conn.execute("select * from tk.pay_line order by pay_line_id").fetchall()
    return punches, pays


def test_fills_tk_and_is_idempotent(make_database, tmp_path):
    url = make_database()  # a postgresql+psycopg:// URL, as HEALTHOPS_TIMEKEEPING_URL is given
    tk_url = url
    first = generate_workforce(tmp_path / "a", tk_url, START, 7, seed=7)
    punches, pays = _content(url)
    assert len(punches) == first["punches"] > 1000 and len(pays) == first["pay_lines"] > 200
    mem = build_workforce(START, 7, seed=7)
    assert [r[:3] + r[4:] for r in punches] == [r[:3] + r[4:] for r in mem["punches"]]
    assert [p[3] for p in punches] == [r[3] for r in mem["punches"]]  # timestamptz round-trip
    assert sum(1 for p in punches if p[8]) == first["deletions"]
    assert sum(1 for p in punches if p[6] == "EDIT") == first["edits"]
    assert [tuple(r) for r in pays] == [tuple(r) for r in mem["pay_lines"]]
    second = generate_workforce(tmp_path / "b", tk_url, START, 7, seed=7)
    assert second == first
    assert _content(url) == (punches, pays)
