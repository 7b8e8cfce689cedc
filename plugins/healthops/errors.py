"""Which failures a retry can fix.

A nightly task is retried only for a *transient* error: the warehouse or the mail
relay could not be reached, a connection dropped, a relay answered "try again
later" (SMTP 4xx, RFC 5321 section 4.2.1). Everything else fails the task at once:
bad data, a bad catalog or setting, a blocking data-quality rule, a rejected
recipient (SMTP 5xx), a bug. Retrying those gives the same answer after minutes of
backoff, and a backfill of history would wait hours on each bad night.
"""

from __future__ import annotations

import smtplib


class PermanentError(Exception):
    """Retrying cannot fix it: the data, the configuration or a rule says no."""


class DataError(PermanentError):
    """The data cannot give what was asked (nothing to report, a blocking rule failed)."""


class ConfigurationError(PermanentError, ValueError):
    """A setting or a reviewed file (catalog, rules) is wrong."""


def _smtp_codes(exc: BaseException) -> list[int]:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return [int(code) for code, _ in exc.recipients.values()]
    if isinstance(exc, smtplib.SMTPResponseException):
        return [int(exc.smtp_code)]
    return []


def is_transient(exc: BaseException) -> bool:
    """True when the same call may succeed later: connection and I/O errors, database
    operational errors (server gone, too many connections), SMTP 4xx replies. SMTP 5xx
    replies and everything that is not I/O are permanent."""
    if isinstance(exc, PermanentError):
        return False
    codes = _smtp_codes(exc)
    if codes:
        return all(400 <= c < 500 for c in codes)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return False  # the relay lacks STARTTLS or AUTH: a setting to change
    if isinstance(exc, (ConnectionError, TimeoutError, smtplib.SMTPException)):
        return True  # refused, reset, timed out; the relay hung up (SMTPServerDisconnected)
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        psycopg = None
    if psycopg is not None and isinstance(exc, psycopg.OperationalError):
        return True  # connection refused or lost, server shutting down, too many clients
    # FileNotFoundError, PermissionError and friends are OSErrors too, but a retry
    # minutes later finds the same file system: only the network kinds above count.
    return False
