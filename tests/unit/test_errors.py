"""Only a transient error is retried: the rest fail the task at once (a retry would
meet the same data, configuration or bug after minutes of backoff)."""

import smtplib

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException

from healthops.errors import ConfigurationError, DataError, is_transient
from healthops.pipeline import BlockingQualityFailure, run_step


@pytest.mark.parametrize(
    "exc, transient",
    [
        (ConnectionRefusedError(111, "Connection refused"), True),
        (TimeoutError("timed out"), True),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), True),
        (smtplib.SMTPResponseException(421, b"4.3.2 Service not available, try again later"), True),
        (smtplib.SMTPRecipientsRefused({"a@example.org": (450, b"mailbox busy")}), True),
        (
            smtplib.SMTPRecipientsRefused({"a@example.org": (550, b"no such user"), "b@example.org": (450, b"busy")}),
            False,
        ),
        (smtplib.SMTPResponseException(554, b"5.7.1 relay denied"), False),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), False),
        (smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server"), False),
        (psycopg.OperationalError("connection to server at 127.0.0.1 failed: Connection refused"), True),
        (psycopg.errors.UndefinedTable("relation raw.adt_messages does not exist"), False),
        (FileNotFoundError(2, "No such file or directory"), False),
        (DataError("daily_census 2025-03-01: no data for any recipient"), False),
        (ConfigurationError("recipient x: filter needs facility"), False),
        (BlockingQualityFailure("blocking data-quality rules failed: CEN-023"), False),
        (ValueError("bad value"), False),
        (KeyError("unit_code"), False),
    ],
)
def test_which_errors_are_transient(exc, transient):
    assert is_transient(exc) is transient


def _raise(exc):
    raise exc


def test_run_step_leaves_a_transient_error_to_the_task_retries():
    with pytest.raises(ConnectionRefusedError):
        run_step(_raise, ConnectionRefusedError(111, "Connection refused"))


def test_run_step_fails_any_other_error_at_once():
    with pytest.raises(AirflowFailException) as e:
        run_step(_raise, BlockingQualityFailure("blocking data-quality rules failed for 2025-03-03: CEN-023"))
    assert str(e.value) == "blocking data-quality rules failed for 2025-03-03: CEN-023"  # the data's own words
    with pytest.raises(AirflowFailException) as e:
        run_step(_raise, KeyError("unit_code"))
    assert str(e.value) == "KeyError: 'unit_code'" and isinstance(e.value.__cause__, KeyError)
    assert run_step(lambda a, b=0: a + b, 2, b=3) == 5
