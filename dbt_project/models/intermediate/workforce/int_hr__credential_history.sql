-- Each credential as the HR snapshots showed it, day by day (type 2 history): one row
-- per worker, credential type and number and stretch of snapshot days with the same
-- dates, valid on [valid_from, valid_to). Whether a licence was verified and current
-- on a date is read from the version in force that date, never from a later snapshot.
-- Built from the snapshot-to-snapshot changes (int_hr__credential_changes).
{{ scd2_from_changes(
    ref('int_hr__credential_changes'),
    hr_history_columns('credentials')['keys'],
    hr_history_columns('credentials')['attributes'],
) }}
