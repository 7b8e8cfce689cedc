"""The timekeeping vendor's tables as its interface spec gives them
(docs/sources.md#timekeeping-database): what the extract reads, and what the synthetic
generator and the tests create to stand in for the vendor's database.

healthops never writes to a hospital's timekeeping database: ``SOURCE_DDL`` is run only
on a database healthops made itself (the demo's generated one, a test's).
"""

from __future__ import annotations

PUNCH_TYPES = ("IN", "OUT", "MEAL_OUT", "MEAL_IN")
PUNCH_SOURCES = ("CLOCK", "EDIT")
# Worked (productive) and paid-not-worked pay codes (docs/definitions.md#worked-and-paid-hours).
WORKED_PAY_CODES = ("REG", "OT", "DT", "CALLBACK", "ORIENT", "EDU")
PAID_NOT_WORKED_PAY_CODES = ("PTO", "SICK", "HOLIDAY", "BEREAVE")
OVERTIME_PAY_CODES = ("OT", "DT")

PUNCH_COLUMNS = (
    "punch_id",
    "worker_id",
    "punch_type",
    "punch_ts",
    "cost_center",
    "job_code",
    "source",
    "updated_at",
    "deleted",
)
PAY_LINE_COLUMNS = (
    "pay_line_id",
    "worker_id",
    "work_date",
    "cost_center",
    "job_code",
    "pay_code",
    "hours",
    "amount",
    "updated_at",
    "deleted",
)

SOURCE_DDL = """
create schema if not exists tk;
create table if not exists tk.punch (
    punch_id    bigint primary key,
    worker_id   text,
    punch_type  text,
    punch_ts    timestamptz,
    cost_center text,
    job_code    text,
    source      text,
    updated_at  timestamptz not null,
    deleted     boolean not null default false
);
create index if not exists punch_updated_at on tk.punch (updated_at);
create table if not exists tk.pay_line (
    pay_line_id bigint primary key,
    worker_id   text,
    work_date   date,
    cost_center text,
    job_code    text,
    pay_code    text,
    hours       numeric(6,2),
    amount      numeric(12,2),
    updated_at  timestamptz not null,
    deleted     boolean not null default false
);
create index if not exists pay_line_updated_at on tk.pay_line (updated_at);
"""
