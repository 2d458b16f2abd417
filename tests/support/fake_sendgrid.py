"""A local SendGrid-compatible HTTP server for tests and benchmarks.

It speaks the parts of the v3 API that equip-mailer uses (POST /v3/mail/send, POST
/v3/mail/batch, POST /v3/user/scheduled_sends) to the real ``sendgrid`` client over real
HTTP, so the tests exercise the same code path as production. Mail Send checks the rules
that the official OpenAPI contract (and so Prism) does not: at most 1,000 personalizations,
each address once per request, custom_args values as strings, text/plain before text/html,
substitutions at most 10,000 bytes per personalization. Refusals use SendGrid's error shape
``{"errors": [{"message": ..., "field": ..., "help": null}]}``.

Every accepted personalization is recorded (thread-safe list) and, when ``jsonl`` is given,
appended to a JSON-lines file, so a test can count what a killed process really sent.

``POST /v3/recipients/erasejob`` records the addresses and answers a job id;
``GET /v3/suppression/<list>`` pages through ``suppression_lists`` (``suppression_faults``
scripts its next answers: "429" with Retry-After or X-RateLimit-Reset, "500", "503");
``GET /v3/messages`` answers like the Email Activity API from what was accepted (filtered by
our ``send_id`` custom arg); ``activity`` set to "403" or "404" answers like an account
without the add-on, and ``activity_faults`` scripts its next answers as for the lists.
With ``on_accept`` set, every accepted personalization is handed to it (the crash test
turns them into signed webhook events for the real service).

A fault plan scripts the next requests: 429 with Retry-After, 500, 413, 401, 400, a
response slower than the client's timeout, or a dropped connection. For the slow and
dropped cases ``accept`` says whether the server recorded the mail before going quiet:
the real SendGrid may or may not have accepted such a request, which is exactly why the
sender must treat it as *uncertain* rather than retry it.

Start it from a test or a benchmark script with ``start_server(...) -> (url, server)``.
"""

from __future__ import annotations

import collections
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

MAX_PERSONALIZATIONS = 1000
MAX_SUBSTITUTION_BYTES = 10_000
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_SEND_AT_AHEAD = 72 * 3600


@dataclass
class Fault:
    """One scripted answer to the next Mail Send request.

    kind: "429", "500", "503", "400", "401", "403", "413" (answer with that status),
    "slow" (sleep ``seconds`` before answering 202: longer than the client's timeout),
    or "drop" (close the connection without an answer).
    """

    kind: str
    retry_after: float | None = None  # 429: Retry-After header (seconds)
    rate_limit_reset: float | None = None  # 429: X-RateLimit-Reset, seconds from now
    seconds: float = 2.0  # slow: how long to stall
    accept: bool | None = None  # slow/drop: record the mail before going quiet?
    message: str | None = None  # an error status: SendGrid's message instead of the default
    field: str | None = None  # ...and the field it names (e.g. "personalizations.3.to")

    def accepts(self) -> bool:
        if self.accept is not None:
            return self.accept
        return self.kind == "slow"  # a slow SendGrid most likely did accept the mail


class Accepted(NamedTuple):
    """One accepted personalization, as the test needs it (no content)."""

    email: str
    recipient: str  # custom_args.recipient (ledger id)
    send_id: str
    segment: str
    campaign_id: str
    subject: str
    message_id: str


class FakeSendGrid(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self,
        api_key: str = "SG.test-key",
        jsonl: Path | None = None,
        delay: float = 0.0,
        keep_bodies: bool = False,
    ):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api_key = api_key
        self.jsonl = Path(jsonl) if jsonl else None
        self.delay = delay  # seconds added to every Mail Send request
        self.keep_bodies = keep_bodies  # keep parsed request bodies (tests only: memory)
        self.lock = threading.Lock()
        self.accepted: list[Accepted] = []
        self.bodies: list[dict] = []
        self.faults: collections.deque[Fault] = collections.deque()
        self.requests = 0  # Mail Send requests seen (any answer)
        self.in_progress = 0  # Mail Send requests being answered now
        self.most_at_once = 0  # the most that were, since start or clear()
        self.statuses: collections.Counter = collections.Counter()
        self.batch_ids: set[str] = set()
        self.scheduled: dict[str, str] = {}  # batch_id -> "cancel" / "pause"
        self.stopping = threading.Event()
        self.activity = "200"  # GET /v3/messages: "200", or "403"/"404" (no add-on)
        self.activity_requests = 0
        self.activity_faults: collections.deque[Fault] = collections.deque()
        # GET /v3/suppression/<list>: {list: [{"email", "created", ...}]}; "403": no access
        self.suppression_lists: dict[str, list[dict]] = {}
        self.suppression_access = "200"
        self.suppression_faults: collections.deque[Fault] = collections.deque()
        self.suppression_requests = 0  # GET /v3/suppression/<list> requests seen
        self.erasures: list[list[str]] = []  # POST /v3/recipients/erasejob: addresses asked
        self.on_accept: Callable[[list[Accepted]], None] | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def plan(self, *faults: Fault) -> None:
        """Queue faults for the next Mail Send requests, in order."""
        with self.lock:
            self.faults.extend(faults)

    def clear(self) -> None:
        with self.lock:
            self.accepted.clear()
            self.bodies.clear()
            self.faults.clear()
            self.requests = 0
            self.most_at_once = 0
            self.statuses.clear()

    def emails(self) -> collections.Counter:
        """Copies accepted per address (lower-cased)."""
        with self.lock:
            return collections.Counter(a.email.lower() for a in self.accepted)

    def _next_fault(self) -> Fault | None:
        with self.lock:
            self.requests += 1
            return self.faults.popleft() if self.faults else None

    def record(self, body: dict, message_id: str) -> None:
        subject = body.get("subject", "")
        rows = []
        for p in body["personalizations"]:
            ca = p.get("custom_args") or {}
            for to in p.get("to", []):
                rows.append(
                    Accepted(
                        email=to["email"],
                        recipient=str(ca.get("recipient", "")),
                        send_id=str(ca.get("send_id", "")),
                        segment=str(ca.get("segment", "")),
                        campaign_id=str(ca.get("campaign_id", "")),
                        subject=p.get("subject", subject),
                        message_id=message_id,
                    )
                )
        with self.lock:
            self.accepted.extend(rows)
            if self.keep_bodies:
                self.bodies.append(body)
            if self.jsonl:
                with self.jsonl.open("a", encoding="utf-8") as fh:
                    fh.write("".join(json.dumps(r._asdict()) + "\n" for r in rows))
                    fh.flush()
        if self.on_accept is not None:
            self.on_accept(rows)

    def activity_messages(self, send_id: str, limit: int) -> list[dict]:
        """The Email Activity API's abbreviated messages for one send id."""
        with self.lock:
            found = [a for a in self.accepted if a.send_id == send_id][:limit]
        return [
            {
                "from_email": "equip@example.org",
                "msg_id": f"{a.message_id}.filter0001.{a.recipient}",
                "subject": a.subject,
                "to_email": a.email,
                "status": "delivered",
                "opens_count": 0,
                "clicks_count": 0,
                "last_event_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            for a in found
        ]

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()


def _rate_headers(fault: Fault) -> dict[str, str]:
    """A 429's rate-limit headers, as the fault asks for them."""
    headers: dict[str, str] = {}
    if fault.kind == "429":
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if fault.rate_limit_reset is not None:
            headers["X-RateLimit-Reset"] = str(int(time.time() + fault.rate_limit_reset))
        headers["X-RateLimit-Limit"] = "600"
        headers["X-RateLimit-Remaining"] = "0"
    return headers


def _error(message: str, field: str | None = None) -> dict:
    return {"errors": [{"message": message, "field": field, "help": None}]}


def _sub_bytes(d: dict) -> int:
    """UTF-8 bytes of keys and values. A character is at most 4 bytes, so a short dict is
    under the limit without encoding anything: this keeps 100,000 recipients cheap."""
    chars = sum(map(len, d)) + sum(map(len, d.values()))
    if chars * 4 <= MAX_SUBSTITUTION_BYTES:
        return chars
    return sum(len(str(k).encode()) + len(str(v).encode()) for k, v in d.items())


def _all_str(values) -> bool:
    return all(type(v) is str for v in values)


def validate_mail(body: dict, batch_ids: set[str], now: float | None = None) -> dict | None:
    """SendGrid's live rules that the OpenAPI contract does not state; None when valid."""
    if not isinstance(body, dict):
        return _error("The request body must be a JSON object.")
    frm = body.get("from")
    if not isinstance(frm, dict) or not frm.get("email"):
        return _error("The from object must be provided for every email send.", "from")
    ps = body.get("personalizations")
    if not isinstance(ps, list) or not ps:
        return _error(
            "The personalizations field is required and must have at least one personalization.",
            "personalizations",
        )
    if len(ps) > MAX_PERSONALIZATIONS:
        return _error(
            "The personalizations field must have 1000 or fewer items.", "personalizations"
        )
    content = body.get("content")
    if not isinstance(content, list) or not content:
        return _error(
            "Unless a valid template_id is provided, the content parameter is required.", "content"
        )
    types = [c.get("type") for c in content]
    if (
        "text/plain" in types
        and "text/html" in types
        and types.index("text/plain") > types.index("text/html")
    ):
        return _error(
            "If present, text/plain content must be first, followed by text/html.", "content"
        )
    seen: set[str] = set()
    total = 0
    top_subject = body.get("subject")
    for i, p in enumerate(ps):
        tos = p.get("to")
        if not tos:
            return _error(
                "The to array is required for all personalization objects.",
                f"personalizations.{i}.to",
            )
        for kind in ("to", "cc", "bcc"):
            addrs = tos if kind == "to" else p.get(kind)
            if not addrs:
                continue
            for addr in addrs:
                total += 1
                email = str(addr.get("email", "")).lower()
                if "@" not in email:
                    return _error(
                        "Does not contain a valid address.", f"personalizations.{i}.{kind}"
                    )
                if email in seen:
                    return _error(
                        "Each email address in the personalization block should be "
                        "unique between to, cc, and bcc.",
                        f"personalizations.{i}.{kind}",
                    )
                seen.add(email)
        if not top_subject and not p.get("subject"):
            return _error("The subject is required.", "subject")
        ca = p.get("custom_args")
        if ca:
            if not isinstance(ca, dict) or not _all_str(ca.values()):
                return _error(
                    "Custom args values must be strings.", f"personalizations.{i}.custom_args"
                )
            if _sub_bytes(ca) > MAX_CUSTOM_ARGS_BYTES:
                return _error(
                    "The custom_args may not exceed 10,000 bytes.",
                    f"personalizations.{i}.custom_args",
                )
        subs = p.get("substitutions")
        if subs:
            if not isinstance(subs, dict) or not _all_str(subs.values()):
                return _error(
                    "Substitution values must be strings.", f"personalizations.{i}.substitutions"
                )
            if _sub_bytes(subs) > MAX_SUBSTITUTION_BYTES:
                return _error(
                    "The total size of substitutions may not exceed 10,000 bytes per "
                    "personalization object.",
                    f"personalizations.{i}.substitutions",
                )
        headers = p.get("headers")
        if headers and not _all_str(headers.values()):
            return _error("Header values must be strings.", f"personalizations.{i}.headers")
    if total > MAX_PERSONALIZATIONS:
        return _error(
            "The total number of recipients must be no more than 1000.", "personalizations"
        )
    top_ca = body.get("custom_args")
    if top_ca is not None and (
        not isinstance(top_ca, dict) or any(not isinstance(v, str) for v in top_ca.values())
    ):
        return _error("Custom args values must be strings.", "custom_args")
    cats = body.get("categories") or []
    if len(cats) > 10 or any(not isinstance(c, str) or len(c) > 255 for c in cats):
        return _error("Categories: at most 10, each text of at most 255 characters.", "categories")
    send_at = body.get("send_at")
    if send_at is not None:
        now = time.time() if now is None else now
        if not isinstance(send_at, int) or send_at > now + MAX_SEND_AT_AHEAD:
            return _error("You cannot schedule a send more than 72 hours in advance.", "send_at")
    batch_id = body.get("batch_id")
    if batch_id is not None and batch_id not in batch_ids:
        return _error("The batch id is not valid.", "batch_id")
    return None


class _Handler(BaseHTTPRequestHandler):
    server: FakeSendGrid
    protocol_version = "HTTP/1.0"

    def log_message(self, format, *args):  # quiet: tests print their own figures
        pass

    def _send_json(self, status: int, payload: dict | None, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode() if payload is not None else b""
        try:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): fine
        self.server.statuses[status] += 1

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.headers.get("Authorization") != f"Bearer {self.server.api_key}":
            self._send_json(
                401, _error("The provided authorization grant is invalid, expired, or revoked")
            )
            return
        url = urlsplit(self.path)
        if url.path.startswith("/v3/suppression/"):
            self._suppression_list(url.path.rstrip("/").rsplit("/", 1)[1], parse_qs(url.query))
            return
        if url.path.rstrip("/") != "/v3/messages":
            self._send_json(404, _error(f"no route {url.path}"))
            return
        self.server.activity_requests += 1
        if self.server.activity in ("403", "404"):
            self._send_json(int(self.server.activity), _error("access forbidden"))
            return
        with self.server.lock:
            faults = self.server.activity_faults
            fault = faults.popleft() if faults else None
        if fault is not None:
            self._send_json(int(fault.kind), _error("too many requests"), _rate_headers(fault))
            return
        params = parse_qs(url.query)
        query = (params.get("query") or [""])[0]
        m = re.fullmatch(r"unique_args\['send_id'\]=\"([^\"]*)\"", query)
        if m is None:
            self._send_json(400, _error(f"invalid syntax: {query!r}"))
            return
        limit = int(float((params.get("limit") or ["10"])[0]))
        self._send_json(200, {"messages": self.server.activity_messages(m.group(1), limit)})

    def _suppression_list(self, kind: str, params: dict[str, list[str]]) -> None:
        """One page of a suppression list: entries created at or after start_time."""
        if kind not in ("bounces", "blocks", "invalid_emails", "spam_reports", "unsubscribes"):
            self._send_json(404, _error(f"no route /v3/suppression/{kind}"))
            return
        if self.server.suppression_access != "200":
            self._send_json(int(self.server.suppression_access), _error("access forbidden"))
            return
        with self.server.lock:
            self.server.suppression_requests += 1
            fault = (
                self.server.suppression_faults.popleft() if self.server.suppression_faults else None
            )
        if fault is not None:
            self._send_json(int(fault.kind), _error("too many requests"), _rate_headers(fault))
            return
        since = int((params.get("start_time") or ["0"])[0])
        limit = int((params.get("limit") or ["500"])[0])
        offset = int((params.get("offset") or ["0"])[0])
        with self.server.lock:
            found = [
                e for e in self.server.suppression_lists.get(kind, []) if e["created"] >= since
            ]
        data = json.dumps(found[offset : offset + limit]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        raw = self._body()
        if self.headers.get("Authorization") != f"Bearer {self.server.api_key}":
            self._send_json(
                401, _error("The provided authorization grant is invalid, expired, or revoked")
            )
            return
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/v3/mail/send":
            self._mail_send(raw)
        elif path == "/v3/mail/batch":
            batch_id = secrets.token_urlsafe(24)
            with self.server.lock:
                self.server.batch_ids.add(batch_id)
            self._send_json(201, {"batch_id": batch_id})
        elif path == "/v3/recipients/erasejob":
            try:
                addresses = json.loads(raw)["email_addresses"]
            except (ValueError, KeyError, TypeError):
                self._send_json(400, _error("email_addresses is required", "email_addresses"))
                return
            with self.server.lock:
                self.server.erasures.append(list(addresses))
            self._send_json(202, {"job_id": f"job-{len(self.server.erasures)}"})
        elif path == "/v3/user/scheduled_sends":
            try:
                body = json.loads(raw)
            except ValueError:
                self._send_json(400, _error("Invalid JSON."))
                return
            if body.get("batch_id") not in self.server.batch_ids:
                self._send_json(400, _error("The batch id is not valid.", "batch_id"))
                return
            if body.get("status") not in ("cancel", "pause"):
                self._send_json(400, _error("status must be cancel or pause", "status"))
                return
            with self.server.lock:
                self.server.scheduled[body["batch_id"]] = body["status"]
            self._send_json(201, body)
        else:
            self._send_json(404, _error(f"no route {path}"))

    def _mail_send(self, raw: bytes) -> None:
        server = self.server
        with server.lock:
            server.in_progress += 1
            server.most_at_once = max(server.most_at_once, server.in_progress)
        try:
            self._answer_mail_send(server, raw)
        finally:
            with server.lock:
                server.in_progress -= 1

    def _answer_mail_send(self, server: FakeSendGrid, raw: bytes) -> None:
        fault = server._next_fault()
        if server.delay:
            server.stopping.wait(server.delay)
        if fault is not None and fault.kind.isdigit():
            status = int(fault.kind)
            headers = _rate_headers(fault)
            messages = {
                400: "Bad Request",
                401: "The provided authorization grant is invalid, expired, or revoked",
                403: "access forbidden",
                413: "Payload Too Large",
                429: "too many requests",
                500: "Internal Server Error",
                503: "Service Unavailable",
            }
            message = fault.message or messages.get(status, "error")
            self._send_json(status, _error(message, fault.field), headers)
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send_json(400, _error("The request body is not valid JSON."))
            return
        problem = validate_mail(body, server.batch_ids)
        if problem:
            self._send_json(400, problem)
            return
        message_id = secrets.token_urlsafe(16)
        if fault is not None and fault.kind in ("slow", "drop"):
            if fault.accepts():
                server.record(body, message_id)
            if fault.kind == "slow":
                server.stopping.wait(fault.seconds)
                self._send_json(202, None, {"X-Message-Id": message_id})
            else:
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.close_connection = True
            return
        server.record(body, message_id)
        self._send_json(202, None, {"X-Message-Id": message_id})


def start_server(
    api_key: str = "SG.test-key",
    *,
    jsonl: Path | None = None,
    delay: float = 0.0,
    keep_bodies: bool = False,
) -> tuple[str, FakeSendGrid]:
    """Start the server on a free loopback port in a daemon thread; returns (url, server).
    Stop it with ``server.stop()``."""
    server = FakeSendGrid(api_key=api_key, jsonl=jsonl, delay=delay, keep_bodies=keep_bodies)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="fake-sendgrid",
        daemon=True,
    )
    thread.start()
    return server.url, server


if __name__ == "__main__":  # pragma: no cover - manual use: python tests/support/fake_sendgrid.py
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--api-key", default="SG.test-key")
    ap.add_argument("--jsonl", type=Path)
    ap.add_argument("--delay", type=float, default=0.0)
    args = ap.parse_args()
    url, srv = start_server(args.api_key, jsonl=args.jsonl, delay=args.delay)
    print(url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()
