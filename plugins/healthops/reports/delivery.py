"""E-mail delivery of rendered reports over SMTP.

Message layout (what mail clients expect for an HTML mail with inline charts
and an attachment)::

    multipart/mixed
      multipart/alternative
        text/plain                 summary (clients without HTML, previews, screen readers)
        multipart/related
          text/html                the report body, images as cid:...
          image/png (inline)       one per chart, Content-ID = the cid
      application/pdf (attachment) <stem>.pdf

Idempotency: the Message-ID is a hash of report, facility, period and the
recipient set, and the Date header is the report's ``generated_at``. Rendering
and sending the same day twice produces the same message, so a re-run (or an
SMTP retry after a lost "250") can be de-duplicated by the relay, the mail
store or ``reporting.deliveries``.

Retries: ``send`` retries transient failures only (disconnects, refused or
reset connections, timeouts, any 4xx reply) with exponential backoff, and never
a 5xx reply: that is permanent and retrying would only repeat it.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import ssl as ssl_module
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr
from typing import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

from healthops.reports.render import RenderedReport

__all__ = ["Accepted", "SmtpSettings", "build_message", "message_id", "send", "send_accepted", "is_transient"]

log = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def normalise_recipients(recipients: str | Iterable[str]) -> list[str]:
    if isinstance(recipients, str):
        recipients = [recipients]
    out: list[str] = []
    for r in recipients:
        r = str(r).strip()
        if not r:
            continue
        if "\r" in r or "\n" in r:
            raise ValueError(f"recipient contains a line break: {r!r}")
        if "@" not in parseaddr(r)[1]:
            raise ValueError(f"not an e-mail address: {r!r}")
        if r not in out:
            out.append(r)
    if not out:
        raise ValueError("no recipients")
    return out


def message_id(
    report: str,
    facility_code: str,
    period: str,
    recipients: Iterable[str],
    domain: str = "healthops.localhost",
    version: str = "",
) -> str:
    """Deterministic Message-ID for one report, facility, period and recipient set
    (order, case and display names of the recipients do not matter), and content
    version when given (a revised report is a new message)."""
    addresses = sorted({addr.lower() for _, addr in getaddresses(list(recipients)) if addr})
    key = "\n".join([report, facility_code, period, ",".join(addresses)] + ([version] if version else []))
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    # Kept short so the header is not folded (a folded Message-ID trips some tools).
    return f"<{report}.{period}.{digest}@{domain}>"


def build_message(
    rendered: RenderedReport,
    sender: str,
    recipients: str | Iterable[str],
    version: str = "",
    replaces: str | None = None,
) -> EmailMessage:
    """Build the report e-mail: text + HTML alternatives, inline charts by
    Content-ID, the PDF attached as ``<stem>.pdf``."""
    to = normalise_recipients(recipients)
    sender_addr = parseaddr(sender)[1]
    if "@" not in sender_addr:
        raise ValueError(f"not an e-mail address: {sender!r}")
    domain = sender_addr.rsplit("@", 1)[1] or "healthops.localhost"

    msg = EmailMessage()
    msg["Subject"] = rendered.subject
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = format_datetime(rendered.generated_at or datetime.now(timezone.utc))
    msg["Message-ID"] = message_id(rendered.report, rendered.facility_code, rendered.period, to, domain, version)
    if replaces:  # a revised report: mail clients thread it under the one it replaces
        msg["In-Reply-To"] = replaces
        msg["References"] = replaces
    msg["X-Healthops-Report"] = rendered.report
    msg["X-Healthops-Period"] = rendered.period
    if rendered.facility_code:
        msg["X-Healthops-Facility"] = rendered.facility_code
    # RFC 3834: machine-generated; out-of-office responders should not answer.
    msg["Auto-Submitted"] = "auto-generated"

    msg.set_content(rendered.text or f"{rendered.subject}\n\nThe report is attached as {rendered.filename_stem}.pdf.\n")
    msg.add_alternative(rendered.html, subtype="html")
    html_part = msg.get_payload()[1]
    for cid, (png, _alt) in rendered.images.items():
        html_part.add_related(
            png,
            maintype="image",
            subtype="png",
            cid=f"<{cid}>",
            disposition="inline",
            filename=f"{cid.split('.', 1)[0]}.png",
        )
    msg.add_attachment(rendered.pdf, maintype="application", subtype="pdf", filename=f"{rendered.filename_stem}.pdf")
    for name, (data, mime) in getattr(rendered, "attachments", {}).items():
        # As bytes: base64, so no line of a CSV can collide with the fixed boundary.
        maintype, _, subtype = mime.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream", filename=name)
    # Fixed MIME boundaries (the email package picks random ones at flatten time):
    # the same report gives the same bytes. Parts are base64 / quoted-printable,
    # whose alphabets cannot produce "--=_healthops_".
    seed = hashlib.sha256(msg["Message-ID"].encode("ascii")).hexdigest()[:20]
    for i, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary(f"=_healthops_{seed}_{i}")
    return msg


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to hand messages over. ``ssl`` is implicit TLS (smtps, port
    465); ``starttls`` upgrades a plain connection (submission, port 587)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    ssl: bool = False
    timeout: float = 30

    def __post_init__(self) -> None:
        if self.starttls and self.ssl:
            raise ValueError("choose one of starttls and ssl")
        if not self.host:
            raise ValueError("SMTP host is empty")
        if not (0 < int(self.port) < 65536):
            raise ValueError(f"SMTP port out of range: {self.port}")

    @classmethod
    def from_url(cls, url: str) -> "SmtpSettings":
        """Parse ``smtp://[user[:pass]@]host[:port][?starttls=true&timeout=10]`` or
        ``smtps://...`` (implicit TLS). User and password are percent-decoded.
        Default ports: 465 with ssl, 587 with starttls, else 25. Query keys:
        ``starttls``, ``ssl``, ``timeout``; anything else is an error (a typo
        must not silently send in clear text)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtps"):
            raise ValueError(f"not an smtp:// or smtps:// URL: {url!r}")
        if not parts.hostname:
            raise ValueError("SMTP URL has no host")
        if parts.path not in ("", "/"):
            raise ValueError(f"SMTP URL has an unexpected path: {parts.path!r}")
        options = {"ssl": scheme == "smtps", "starttls": False}
        timeout: float = 30
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            key = key.lower()
            if key in ("ssl", "starttls"):
                v = value.strip().lower()
                if v in _TRUE:
                    options[key] = True
                elif v in _FALSE:
                    options[key] = False
                else:
                    raise ValueError(f"SMTP URL: {key}={value!r} is not a boolean")
            elif key == "timeout":
                timeout = float(value)
                if timeout <= 0:
                    raise ValueError("SMTP URL: timeout must be > 0")
            else:
                raise ValueError(f"SMTP URL: unknown option {key!r}")
        port = parts.port or (465 if options["ssl"] else 587 if options["starttls"] else 25)
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            starttls=options["starttls"],
            ssl=options["ssl"],
            timeout=timeout,
        )

    def redacted_url(self) -> str:
        """The settings as a URL for logs, password masked."""
        scheme = "smtps" if self.ssl else "smtp"
        auth = f"{self.username}:***@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = "?starttls=true" if self.starttls else ""
        return f"{scheme}://{auth}{host}:{self.port}{query}"


def is_transient(exc: BaseException) -> bool:
    """True when trying again later may succeed: connection trouble or a 4xx reply."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return False


@dataclass(frozen=True)
class Accepted:
    """What the relay said when it took a message: recipients it refused (empty when
    all were accepted) and its reply to the end of DATA (e.g. ``250 2.0.0 Ok: queued as
    4F2A``), the queue id an operator can look up in the relay's log."""

    refused: dict
    reply: str
    attempts: int


def _send_once(message: EmailMessage, settings: SmtpSettings) -> tuple[dict, str]:
    if settings.ssl:
        client = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout, context=ssl_module.create_default_context()
        )
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    with client as smtp:
        smtp.ehlo()
        if settings.starttls:
            smtp.starttls(context=ssl_module.create_default_context())
            smtp.ehlo()
        if settings.username:
            smtp.login(settings.username, settings.password or "")
        reply: list[str] = []
        data = smtp.data

        def keep_reply(msg):  # smtplib drops the reply to DATA: keep it for the ledger
            code, text = data(msg)
            reply.append(f"{code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}")
            return code, text

        smtp.data = keep_reply
        refused = smtp.send_message(message)
        return refused, (reply[-1] if reply else "")


def send(message: EmailMessage, settings: SmtpSettings, retries: int = 3, backoff_seconds: float = 2.0) -> dict:
    """``send_accepted``, returning only the refused recipients (smtplib's dict)."""
    return send_accepted(message, settings, retries, backoff_seconds).refused


def send_accepted(
    message: EmailMessage, settings: SmtpSettings, retries: int = 3, backoff_seconds: float = 2.0
) -> Accepted:
    """Send ``message``; on a transient failure wait and try again, up to
    ``retries`` more times (so at most ``retries + 1`` attempts), waiting
    ``backoff_seconds``, then twice that, and so on. Permanent failures (5xx,
    TLS or authentication set-up errors) raise at once.

    Returns what the relay said (``Accepted``): the refused recipients, empty when
    every recipient was accepted; when only some were refused the message went to
    the rest, and the refusals are logged and returned rather than retried (a retry
    would duplicate the mail for everyone who got it).
    """
    if retries < 0:
        raise ValueError("retries must be >= 0")
    attempt = 0
    while True:
        attempt += 1
        try:
            refused, reply = _send_once(message, settings)
        except Exception as exc:
            if attempt > retries or not is_transient(exc):
                log.error(
                    "sending %s via %s failed (attempt %d): %s",
                    message.get("Message-ID"),
                    settings.redacted_url(),
                    attempt,
                    exc,
                )
                raise
            delay = backoff_seconds * (2 ** (attempt - 1))
            log.warning(
                "sending %s via %s: transient failure (attempt %d of %d), retrying in %.1fs: %s",
                message.get("Message-ID"),
                settings.redacted_url(),
                attempt,
                retries + 1,
                delay,
                exc,
            )
            if delay > 0:
                time.sleep(delay)
            continue
        if refused:
            log.warning("sending %s: recipients refused: %s", message.get("Message-ID"), refused)
        log.info("sent %s via %s (attempt %d): %s", message.get("Message-ID"), settings.redacted_url(), attempt, reply)
        return Accepted(refused=refused, reply=reply, attempts=attempt)
