"""The embedded SMTP server used when no relay is configured (demo, tests).

It accepts every message on a loopback port and writes it to a directory as
``<UTC timestamp>_<n>.eml``: the exact bytes the client sent in DATA (after
SMTP dot-unstuffing, CRLF line endings), which any mail client or the
``email`` package opens. Files appear atomically (written to a hidden ``.tmp``
name, then renamed), so a reader polling the folder never sees half a message.
If the message cannot be stored, the client gets ``451`` and retries.

    with start_outbox(Path("out/outbox")) as outbox:
        send(message, SmtpSettings.from_url(outbox.url))

    python -m healthops.reports.outbox --dir out/outbox --port 8025   # foreground relay
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import itertools
import logging
import os
import signal
import socket
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

from aiosmtpd.controller import Controller

__all__ = ["Outbox", "OutboxHandler", "start_outbox", "find_free_port", "main"]

log = logging.getLogger(__name__)


def find_free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the OS picks it; we release it at once)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class OutboxHandler:
    """aiosmtpd handler: store each message as an .eml file."""

    def __init__(self, outbox_dir: Path) -> None:
        self.outbox_dir = Path(outbox_dir)
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def store(self, content: bytes) -> Path:
        with self._lock:
            n = next(self._counter)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        final = self.outbox_dir / f"{stamp}_{n}.eml"
        tmp = self.outbox_dir / f".{final.name}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        return final

    async def handle_DATA(self, server, session, envelope) -> str:
        try:
            path = self.store(envelope.original_content)
        except OSError:
            log.exception("outbox: could not store a message from %s", envelope.mail_from)
            return "451 4.3.0 Requested action aborted: could not store the message"
        log.info("outbox: %s -> %s stored as %s", envelope.mail_from, ", ".join(envelope.rcpt_tos), path.name)
        return "250 2.0.0 Message accepted for delivery"


class Outbox:
    """A running outbox server. Use as a context manager or call ``stop()``."""

    def __init__(self, controller: Controller, directory: Path) -> None:
        self._controller = controller
        self.directory = directory
        self.host: str = controller.hostname
        self.port: int = controller.port
        self._stopped = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"smtp://{host}:{self.port}"

    def messages(self) -> list[Path]:
        """The stored messages, oldest first."""
        return sorted(self.directory.glob("*.eml"))

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._controller.stop()

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Outbox({self.url}, dir={str(self.directory)!r})"


def start_outbox(outbox_dir: Path, host: str = "127.0.0.1", port: int = 0) -> Outbox:
    """Start the outbox SMTP server in a background thread and return it.

    ``port=0`` picks a free port (found by binding first; on the rare race
    where another process takes it before the server binds, try another).
    """
    outbox_dir = Path(outbox_dir)
    outbox_dir.mkdir(parents=True, exist_ok=True)
    handler = OutboxHandler(outbox_dir)
    attempts = 5 if port == 0 else 1
    for attempt in range(1, attempts + 1):
        chosen = port or find_free_port(host)
        # server_hostname: fixed greeting name, no reverse DNS lookup at start.
        controller = Controller(handler, hostname=host, port=chosen, server_hostname="healthops-outbox")
        try:
            controller.start()
        except OSError as exc:
            # aiosmtpd re-raises the bind error of its server thread here.
            with contextlib.suppress(Exception):
                controller.stop(no_assert=True)
            if exc.errno == errno.EADDRINUSE and attempt < attempts:
                continue
            raise
        log.info("outbox listening on smtp://%s:%s, writing to %s", host, chosen, outbox_dir)
        return Outbox(controller, outbox_dir)
    raise RuntimeError("could not start the outbox")  # pragma: no cover


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m healthops.reports.outbox",
        description="Run the healthops outbox SMTP server in the foreground: every message "
        "received is written to DIR as an .eml file.",
    )
    parser.add_argument("--dir", required=True, type=Path, help="folder for the .eml files (created)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8025, help="port (default 8025; 0 picks a free one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    stop = threading.Event()

    def _stop(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with start_outbox(args.dir, host=args.host, port=args.port) as outbox:
        print(f"outbox listening on {outbox.url}, writing to {args.dir} (Ctrl-C to stop)", flush=True)
        while not stop.wait(1.0):
            pass
    print("outbox stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
