"""The PHI guard without reading raw, and a rejection category that cannot quote the message.

``reporting.phi_identifier_matches(tokens text[], dates date[])``: the pre-send PHI scan
(``healthops.reports.phi``) asks it which of the tokens and dates of a rendered report
are patient identifiers. The reporting step is to log in as ``healthops_reporter``,
which may not read ``raw``; the function runs with its owner's rights (``SECURITY
DEFINER``, the migrating user) and answers with what the caller supplied only, never a
stored value it was not given:

- ``('MRN', token, null)``: the token is a patient's MRN (``raw.adt_messages.mrn``, or
  the first component of a repetition of PID-3 of a rejected message);
- ``('name', family, given)``: both are supplied tokens, and some patient has that
  family name with that given-name token (``patient_name`` FAMILY^GIVEN, or PID-5 of a
  rejected message, each repetition);
- ``('birth date', 'YYYY-MM-DD', null)``: the supplied date is some patient's birth
  date (``birth_date``, or the first 8 digits of PID-7 of a rejected message).

A patient whose only message was rejected (no PV1-19, an unknown unit) is still a
patient: rejected messages (``raw.rejected.raw_text``, HL7 with the standard
delimiters ``|^~``; segments end with CR or LF) are parsed here, in SQL, on every call
(the quarantine is small; nothing is copied out of raw).

``search_path`` is pinned (``pg_catalog, pg_temp``; every name is schema-qualified), so
a caller cannot slip its own ``upper`` or ``unnest`` under the owner's rights.
``EXECUTE`` is revoked from PUBLIC and granted to ``healthops_reporter`` where that role
exists. It is a membership oracle by nature (a caller may ask about any token); what it
cannot do is list identifiers.

``raw.rejected.reason_category`` is redefined: the baseline stripped quoted values with
a regexp that an apostrophe inside the quotes defeats (``unknown unit 'O'BRIEN WARD'``
left ``BRIEN WARD'``). The category is now, by construction, the reason's text before
the first ``:``, ``'``, ``"``, ``(`` or ``[`` (whitespace collapsed, trailing `` ;,.``
trimmed; ``unspecified`` when nothing is left): no character after the first delimiter
that could open a quoted value reaches it. A generated column's expression can only be
changed by dropping and adding it again (``ALTER COLUMN ... SET EXPRESSION`` is
PostgreSQL 17+). The views that read the column are dbt's (``rpt_dq_*``): they are
saved (definition, owner, grants, comments), dropped one by one in dependency order and
created again, unchanged, in this same transaction, so a built warehouse keeps working
before the next ``dbt build``. A view outside dbt's schemas that reads the column stops
the migration with its name (nothing is dropped with CASCADE, ever).

``reporting.resends`` gets the delivery ledger's states (``healthops reports resend``):
the resend is recorded ``sending`` and committed before the relay hears of it, then
``sent`` (``sent_at``, ``relay_response``) or ``failed`` (``last_error``), as
``reporting.deliveries`` is for publishing (0003). Rows of earlier releases were
written after the relay accepted: ``sent``, at their ``resent_at``. A resend is not a
``reporting.deliveries`` row: a version already sent to that recipient has its row
(the key is report, period, recipient and version), and a failed resend must not make
its period owed (the next run would email an archived history period to every
recipient of the report).

Revision ID: 0005_phi_guard
Revises: 0004_refused_files_append_only
"""

from __future__ import annotations

from alembic import op

from healthops.errors import ConfigurationError

revision = "0005_phi_guard"
down_revision = "0004_refused_files_append_only"
branch_labels = None
depends_on = None

FUNCTION = r"""
create function reporting.phi_identifier_matches(tokens text[], dates date[])
returns table (kind text, value text, given text)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $fn$
with supplied as (
    select distinct pg_catalog.upper(t) as token
    from pg_catalog.unnest(coalesce(tokens, '{}'::text[])) as t
    where t is not null and t <> ''
),
supplied_dates as (
    select distinct d from pg_catalog.unnest(coalesce(dates, '{}'::date[])) as d where d is not null
),
-- the PID segment of every rejected message, as its fields (f[n + 1] is PID-n)
pid as (
    select pg_catalog.string_to_array(seg, '|') as f
    from raw.rejected as r
    cross join lateral pg_catalog.regexp_split_to_table(r.raw_text, '[\r\n]+') as seg
    where seg ~ '^[\x0b\x1c\s]*PID\|'
),
known_mrns as (
    select pg_catalog.upper(a.mrn) as mrn from raw.adt_messages as a
    where pg_catalog.upper(a.mrn) in (select token from supplied)
    union
    select pg_catalog.upper(pg_catalog.btrim(pg_catalog.split_part(rep, '^', 1)))
    from pid cross join lateral pg_catalog.unnest(pg_catalog.string_to_array(pid.f[4], '~')) as rep
),
patient_names as (  -- (family, given) of every patient whose family name was supplied
    select pg_catalog.upper(pg_catalog.split_part(a.patient_name, '^', 1)) as family,
           pg_catalog.upper(pg_catalog.split_part(a.patient_name, '^', 2)) as given
    from raw.adt_messages as a
    where pg_catalog.upper(pg_catalog.split_part(a.patient_name, '^', 1)) in (select token from supplied)
    union
    select pg_catalog.upper(pg_catalog.btrim(pg_catalog.split_part(rep, '^', 1))),
           pg_catalog.upper(pg_catalog.split_part(rep, '^', 2))
    from pid cross join lateral pg_catalog.unnest(pg_catalog.string_to_array(pid.f[6], '~')) as rep
),
name_hits as (
    select distinct n.family, g.token as given
    from patient_names as n
    cross join lateral pg_catalog.regexp_split_to_table(n.given, '[^A-Z0-9]+') as g (token)
    where n.family in (select token from supplied) and g.token in (select token from supplied)
)
select 'MRN', s.token, null::text from supplied as s where s.token in (select mrn from known_mrns)
union all
select 'name', h.family, h.given from name_hits as h
union all
select 'birth date', pg_catalog.to_char(sd.d, 'YYYY-MM-DD'), null::text
from supplied_dates as sd
where exists (select from raw.adt_messages as a where a.birth_date = sd.d)
   or exists (
       select from pid
       where pg_catalog.substring(pid.f[8], '^\s*(\d{8})') = pg_catalog.to_char(sd.d, 'YYYYMMDD')
   )
$fn$;
revoke execute on function reporting.phi_identifier_matches(text[], date[]) from public;
comment on function reporting.phi_identifier_matches(text[], date[]) is 'The pre-send PHI scan: which of the supplied tokens are MRNs, which supplied (family, given) token pairs are a patient''s name, which supplied dates are birth dates, in raw.adt_messages and in the PID segment of raw.rejected messages. Returns only values the caller supplied. SECURITY DEFINER: the reporter may not read raw.';
"""

# Text before the first ':', quote, '(' or '[': nothing a reason quotes from a message.
CATEGORY = r"""coalesce(nullif(rtrim(btrim(regexp_replace(
        substring(reason from '^[^:''"(\[]*'), '\s+', ' ', 'g')), ' ;,.'), ''), 'unspecified')"""

COLUMN_COMMENT = (
    "The reason's kind: its text before the first ':', quote, '(' or '[' (generated), so it never holds a value "
    "the reason quotes from the message. Reports read this column, never reason or raw_text."
)

# The schemas dbt builds views in (dbt_project.yml): their views are recreated, unchanged.
DBT_SCHEMAS = ("staging", "intermediate", "marts", "rpt")

# Views (and materialized views) that read raw.rejected.reason_category, directly or
# through another view: (oid, schema, name, relkind, depth), deepest last.
DEPENDENTS = """
with recursive deps (oid, depth) as (
    select distinct rw.ev_class, 1
    from pg_depend d join pg_rewrite rw on rw.oid = d.objid
    join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
    where d.classid = 'pg_rewrite'::regclass and d.refobjid = 'raw.rejected'::regclass
      and a.attname = 'reason_category' and rw.ev_class <> 'raw.rejected'::regclass
    union
    select rw.ev_class, deps.depth + 1
    from deps join pg_depend d on d.refobjid = deps.oid and d.classid = 'pg_rewrite'::regclass
    join pg_rewrite rw on rw.oid = d.objid
    where rw.ev_class <> deps.oid
)
select c.oid, n.nspname, c.relname, c.relkind, max(deps.depth)
from deps join pg_class c on c.oid = deps.oid join pg_namespace n on n.oid = c.relnamespace
group by c.oid, n.nspname, c.relname, c.relkind
order by max(deps.depth), n.nspname, c.relname
"""


def _ident(conn, *parts: str) -> str:
    return ".".join(conn.execute("select quote_ident(%s)", (p,)).fetchone()[0] for p in parts)


def _save_view(conn, oid: int, schema: str, name: str, relkind: str) -> list[str]:
    """The statements that create the view again as it is: definition, options, owner,
    grants, comments on it and its columns."""
    q = _ident(conn, schema, name)
    definition, owner, options, comment = conn.execute(
        """select pg_get_viewdef(c.oid), pg_get_userbyid(c.relowner), c.reloptions,
                  obj_description(c.oid, 'pg_class') from pg_class c where c.oid = %s""",
        (oid,),
    ).fetchone()
    with_ = f" with ({', '.join(options)})" if options else ""
    kind = "materialized view" if relkind == "m" else "view"
    out = [f"create {kind} {q}{with_} as {definition.rstrip().rstrip(';')}"]
    if owner != conn.execute("select current_user").fetchone()[0]:
        out.append(f"alter {kind} {q} owner to {_ident(conn, owner)}")
    for grantee, privilege, grantable in conn.execute(
        """select case when a.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(a.grantee)) end,
                  a.privilege_type, a.is_grantable
           from pg_class c cross join lateral aclexplode(c.relacl) a
           where c.oid = %s and a.grantee <> c.relowner""",
        (oid,),
    ).fetchall():
        out.append(f"grant {privilege} on {q} to {grantee}" + (" with grant option" if grantable else ""))
    if comment is not None:
        out.append(f"comment on {kind} {q} is {_literal(conn, comment)}")
    for column, col_comment in conn.execute(
        """select attname, col_description(attrelid, attnum) from pg_attribute
           where attrelid = %s and attnum > 0 and not attisdropped and col_description(attrelid, attnum) is not null""",
        (oid,),
    ).fetchall():
        out.append(f"comment on column {q}.{_ident(conn, column)} is {_literal(conn, col_comment)}")
    return out


def redefine_reason_category(conn) -> list[str]:
    """Drop and add ``raw.rejected.reason_category`` with the new expression, keeping the
    dbt views that read it (recreated unchanged). Returns the views recreated."""
    dependents = conn.execute(DEPENDENTS).fetchall()
    foreign = [f"{s}.{n}" for _, s, n, _, _ in dependents if s not in DBT_SCHEMAS]
    if foreign:
        raise ConfigurationError(
            "raw.rejected.reason_category is read by view(s) healthops does not build: "
            + ", ".join(foreign)
            + "; drop them (and create them again after `healthops warehouse migrate`): nothing is dropped "
            "with CASCADE"
        )
    saved = [(s, n, k, _save_view(conn, oid, s, n, k)) for oid, s, n, k, _ in dependents]
    # privileges granted on the column itself (a DBA's column grants) go with it: kept
    column_grants = [
        f"grant {privilege} (reason_category) on raw.rejected to {grantee}"
        for grantee, privilege in conn.execute(
            """select case when a.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(a.grantee)) end,
                      a.privilege_type
               from pg_attribute t cross join lateral aclexplode(t.attacl) a
               where t.attrelid = 'raw.rejected'::regclass and t.attname = 'reason_category'"""
        ).fetchall()
    ]
    for s, n, k, _ in reversed(saved):  # the deepest first: nothing depends on it any more
        conn.execute(f"drop {'materialized view' if k == 'm' else 'view'} {_ident(conn, s, n)}")
    conn.execute("alter table raw.rejected drop column reason_category")
    conn.execute(f"alter table raw.rejected add column reason_category text generated always as ({CATEGORY}) stored")
    conn.execute(f"comment on column raw.rejected.reason_category is {_literal(conn, COLUMN_COMMENT)}")
    for statement in column_grants:
        conn.execute(statement)
    for _, _, _, statements in saved:
        for statement in statements:
            conn.execute(statement)
    return [f"{s}.{n}" for s, n, _, _ in saved]


def _literal(conn, value: str) -> str:
    return conn.execute("select quote_literal(%s::text)", (value,)).fetchone()[0]


RESENDS = """
alter table reporting.resends
    add column state text not null default 'sent' check (state in ('sending', 'sent', 'failed')),
    add column sent_at timestamptz,
    add column relay_response text,
    add column last_error text;
update reporting.resends set sent_at = resent_at where state = 'sent';
alter table reporting.resends add constraint resends_sent_at_when_sent check ((state = 'sent') = (sent_at is not null));
comment on table reporting.resends is 'Archived messages sent again (healthops reports resend): the intent (state sending, resent_at) is committed before the SMTP transaction; sent (sent_at, relay_response) after the relay accepted; failed (last_error) when it refused or could not be reached.';
"""


def upgrade() -> None:
    conn = op.get_bind().connection.driver_connection
    conn.execute(FUNCTION)
    conn.execute(RESENDS)
    if conn.execute("select 1 from pg_roles where rolname = 'healthops_reporter'").fetchone():
        conn.execute("grant execute on function reporting.phi_identifier_matches(text[], date[]) to healthops_reporter")
        conn.execute("grant update on reporting.resends to healthops_reporter")  # sending -> sent / failed
    redefine_reason_category(conn)


def downgrade() -> None:
    # Going back would put the leaky category expression back and send the PHI scan to raw.
    raise NotImplementedError("0005_phi_guard is not reversible")
