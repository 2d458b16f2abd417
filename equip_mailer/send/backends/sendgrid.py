"""The SendGrid backend: each batch posted to Mail Send, the answer classified in one place.

Which answers are retried (429 and 5xx, with backoff that honours Retry-After), which stop
the run (a refused key or payload: the next batch would fail the same way), and which are
*uncertain* (no answer after the request left: SendGrid may have accepted it, so it is never
re-sent blindly) is decided here and nowhere else. Scheduled sends (a SendGrid batch id,
cancelling) go through the same client and the same error wording.
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import http.client
import json
import logging
import math
import random
import socket
import threading
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import orjson

from equip_mailer.errors import DeliveryError
from equip_mailer.send.batch import Batch, BatchResult, mask_addresses
from equip_mailer.send.campaign_mail import CampaignMail
from equip_mailer.send.sendgrid_request import build_request


class Headers(Protocol):
    """An answer's headers as the client gives them (an ``http.client.HTTPMessage``)."""

    def get(self, name: str, /) -> str | None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """429 and 5xx are retried: exponential backoff with full jitter, but never sooner than
    SendGrid's Retry-After / X-RateLimit-Reset says."""

    attempts: int = 6  # total tries per batch
    base: float = 0.5  # seconds
    cap: float = 30.0
    max_wait: float = 120.0  # a single wait longer than this ends the batch as failed

    def delay(self, attempt: int, headers: Headers | None) -> float:
        backoff = random.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))
        told = _told_wait(headers)
        return max(backoff, told) if told is not None else backoff


def _told_wait(headers: Headers | None) -> float | None:
    if headers is None:
        return None
    retry_after = headers.get("Retry-After")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(retry_after).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            pass
    return None


def sendgrid_errors(body: bytes | str | None) -> str:
    """SendGrid's ``errors[].message`` (with the field), joined; the raw text otherwise."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    try:
        data = json.loads(text)
        parts = []
        for e in data.get("errors", []):
            msg = str(e.get("message") or "").strip()
            if e.get("field"):
                msg += f" (field {e['field']})"
            parts.append(msg)
        if parts:
            return mask_addresses("; ".join(parts))
    except (ValueError, AttributeError, TypeError):
        pass
    return mask_addresses(text.strip()[:300])


# SendGrid's field (the first part of its JSON path) -> what to change, in the spec's words
_SPEC_FIELDS = {
    "from": "the sender, `from` in the campaign file (its domain must be authenticated in "
    "SendGrid)",
    "reply_to": "`reply_to` in the campaign file",
    "subject": "the subject, `subject` in the campaign file (or its segment's)",
    "asm": "`sendgrid.asm_group_id` in the campaign file (an unsubscribe group of this "
    "SendGrid account)",
    "categories": "`sendgrid.categories` in the campaign file",
    "send_at": "`sendgrid.send_at` in the campaign file",
    "batch_id": "`sendgrid.send_at` in the campaign file",
    "content": "the email's content (the campaign file's text, or templates/)",
}


def _ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, ..., 21st."""
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def what_to_change(errors: bytes | str | None, body: dict[str, Any]) -> str | None:
    """For a 400, what the manager should change, from the first field SendGrid names: a
    spec key, or the reader (masked) a personalization stands for; "" when the field is a
    part of the request equip-mailer builds itself; None when SendGrid named no field."""
    from equip_mailer.config import mask_email

    try:
        text = errors.decode("utf-8", "replace") if isinstance(errors, bytes) else errors
        fields = [str(e["field"]) for e in json.loads(text or "")["errors"] if e.get("field")]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not fields:
        return None
    parts = fields[0].split(".")
    if parts[0] == "personalizations" and len(parts) > 2 and parts[1].isdigit():
        n = int(parts[1])
        people = body.get("personalizations") or []
        if parts[2] in ("to", "cc", "bcc") and n < len(people):
            to = (people[n].get("to") or [{}])[0].get("email", "")
            return (
                f"the recipient address {mask_email(str(to))} (the {_ordinal(n + 1)} in "
                "this batch): correct or remove it in its list"
            )
    return _SPEC_FIELDS.get(parts[0], "")


_REFUSALS = {
    400: (
        "SendGrid refused {what}: {detail}",
        "Fix the campaign or list, then run the same "
        "command again; recipients of this batch were not sent and will be retried.",
    ),
    401: (
        "SendGrid rejected the API key while sending {what}: {detail}",
        "Check SENDGRID_API_KEY (a Mail Send key), then run the same command again.",
    ),
    403: (
        "SendGrid refused access while sending {what}: {detail}",
        "The API key lacks the Mail Send permission, or the sender is not verified.",
    ),
    413: (
        "SendGrid said {what} is too large: {detail}",
        "Lower EQUIP_BATCH_SIZE or shorten the content, then run the same command again.",
    ),
}


class SendGridBackend:
    """Posts each batch with the official client and classifies the answer.

    The client sets no timeout of its own, so one is set explicitly: a stalled socket would
    otherwise hang the send for ever.
    """

    name = "sendgrid"
    # Requests at once (send/dispatch.py): SendGrid answers one while the next travels.
    # Each thread makes its own connection; the client keeps no state between requests.
    max_in_flight = 2

    def __init__(
        self,
        api_key: str,
        mail: CampaignMail,
        *,
        host: str = "https://api.sendgrid.com",
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] | None = None,
    ):
        self.mail = mail
        self.host = host.rstrip("/")
        self.timeout = float(timeout)
        self.retry = retry
        # set by ``interrupt``: a wait before a retry ends at once, and nothing more is posted
        self.stopping = threading.Event()
        self.sleep = sleep if sleep is not None else self.stopping.wait
        # told of each wait before a retry (seconds, HTTP status, the batch): the progress
        # bar says so, rather than standing still for minutes
        self.waiting: Callable[[float, int, str], None] | None = None
        self.sg = client(api_key, self.host, self.timeout)

    def interrupt(self) -> None:
        """The run is being stopped (Ctrl+C): requests waiting out a 429 or a 5xx end now,
        not sent, instead of posting their batch after the manager stopped the run."""
        self.stopping.set()

    # -- scheduling --------------------------------------------------------------------
    def create_batch_id(self) -> str:
        """POST /v3/mail/batch: the id under which a scheduled send can be cancelled."""
        resp = self._call(
            lambda: self.sg.client.mail.batch.post(timeout=self.timeout),
            "creating a SendGrid batch id for the scheduled send",
        )
        try:
            return json.loads(resp.body)["batch_id"]
        except (ValueError, KeyError, TypeError):
            raise DeliveryError(
                "SendGrid answered the batch id request without a batch_id"
            ) from None

    def cancel_scheduled(self, sg_batch_id: str) -> None:
        """POST /v3/user/scheduled_sends {batch_id, status: cancel}."""
        self._call(
            lambda: self.sg.client.user.scheduled_sends.post(
                request_body={"batch_id": sg_batch_id, "status": "cancel"}, timeout=self.timeout
            ),
            "cancelling the scheduled send",
        )

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        return call(fn, what, self.host)

    # -- sending -----------------------------------------------------------------------
    def send_batch(self, batch: Batch) -> BatchResult:
        return post_mail(
            self.sg,
            build_request(self.mail, batch),
            batch.describe(),
            host=self.host,
            timeout=self.timeout,
            retry=self.retry,
            sleep=self.sleep,
            stopping=self.stopping,
            waiting=self.waiting,
        )


def call(
    fn: Callable[[], Any],
    what: str,
    host: str,
    *,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """One request that is not a Mail Send (batch ids, Email Activity, suppression lists,
    erasure jobs): its answer, or a DeliveryError saying what SendGrid answered (with
    ``status``) or that it did not answer. With ``retry`` (a request safe to repeat: a
    GET), 429 and 5xx are tried again as Mail Send's are."""
    from python_http_client.exceptions import HTTPError

    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except HTTPError as exc:
            status = int(exc.status_code)
            if retry is not None and _retryable(status):
                wait = retry.delay(attempt, exc.headers)
                if attempt < retry.attempts and wait <= retry.max_wait:
                    sleep(wait)
                    continue
            times = f" {_times(attempt)}" if attempt > 1 else ""
            raise DeliveryError(
                f"SendGrid answered HTTP {status} while {what}{times}: "
                f"{sendgrid_errors(exc.body) or 'no detail'}",
                status=status,
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise DeliveryError(
                f"no answer from SendGrid at {host} while {what} ({_network_reason(exc)})"
            ) from None


def json_answer(resp: Any, what: str) -> Any:
    """The JSON body of an answer, or a DeliveryError naming what it was for."""
    try:
        return json.loads(resp.body or b"null")
    except (ValueError, TypeError):
        raise DeliveryError(f"SendGrid's answer to {what} was not JSON") from None


def client(api_key: str, host: str, timeout: float) -> Any:
    """The official client with a timeout set (it has none of its own) and its DEBUG logging
    (full payloads, the Authorization header) kept out of every log."""
    import sendgrid

    logging.getLogger("python_http_client").setLevel(logging.WARNING)
    if not api_key:
        raise DeliveryError("SENDGRID_API_KEY is not set", hint="Set it, or use --backend outbox.")
    sg = sendgrid.SendGridAPIClient(api_key, host=host.rstrip("/"))
    sg.client.timeout = float(timeout)
    return sg


def post_mail(
    sg: Any,
    body: dict[str, Any],
    what: str,
    *,
    host: str,
    timeout: float,
    retry: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], object] = time.sleep,
    stopping: threading.Event | None = None,
    waiting: Callable[[float, int, str], None] | None = None,
) -> BatchResult:
    """POST /v3/mail/send once, retrying 429/5xx, and classify the answer (sent, failed,
    uncertain) in the one place both campaign batches and single notices share. Once
    ``stopping`` is set, nothing more is posted: the batch ends failed (not sent)."""
    from python_http_client.exceptions import HTTPError

    endpoint = mail_send_endpoint(sg)
    encoded = encode_body(body)
    attempt = 0
    last = ""
    while True:
        attempt += 1
        if stopping is not None and stopping.is_set():
            return BatchResult(
                "failed",
                attempts=attempt - 1,
                stop=True,
                error=f"the run was stopped before {what} was posted{last}; it was not sent",
            )
        try:
            resp = endpoint.post(request_body=encoded, timeout=timeout)
        except HTTPError as exc:
            status = int(exc.status_code)
            if _retryable(status):
                wait = retry.delay(attempt, exc.headers)
                if attempt < retry.attempts and wait <= retry.max_wait:
                    if waiting is not None:
                        waiting(wait, status, what)
                    sleep(wait)
                    last = f" again (SendGrid had answered HTTP {status})"
                    continue
                if status == 429 and wait > retry.max_wait:
                    return _rate_limited(wait, retry.max_wait, what, attempt)
            result = _refused(status, sendgrid_errors(exc.body), what, attempt)
            if status == 400:
                return _with_change(result, what_to_change(exc.body, body))
            return result
        except (OSError, http.client.HTTPException) as exc:
            return _no_answer(exc, what, attempt, host)
        if 200 <= resp.status_code < 300:
            headers = resp.headers
            mid = headers.get("X-Message-Id") if headers is not None else None
            return BatchResult("sent", status=resp.status_code, message_id=mid, attempts=attempt)
        return BatchResult(
            "uncertain",
            status=resp.status_code,
            attempts=attempt,
            error=f"SendGrid answered {what} with unexpected HTTP {resp.status_code}",
        )


# Any JSON media type but the bare one makes the client send our text as it is, instead of
# encoding the body again with the json module.
JSON_TEXT = "application/json; charset=utf-8"


class JsonBody(bytes):
    """The request's JSON, already UTF-8: what the client posts as it is.

    python_http_client formats every request's payload into a debug message whether or not
    debug logging is on ('PAYLOAD: {data}'.format(...)): for a 1 MB body of 1,000 readers
    that is a repr of every byte, ~4 ms per batch with the lock held that the thread
    building the next batch needs. This type prints as its size, which is also all a debug
    log should ever show of it: the body holds the readers' addresses."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"<JSON body, {len(self):,} bytes>"

    __repr__ = __str__

    def encode(self, encoding: str = "utf-8") -> bytes:
        """The client calls ``request_body.encode('utf-8')`` on a body it should not
        re-encode as JSON: here it is UTF-8 bytes already, so no decode-encode round trip.
        Any other encoding is honoured (the text re-encoded), so this never lies."""
        if codecs.lookup(encoding).name == "utf-8":
            return self
        return bytes(self).decode("utf-8").encode(encoding)


def encode_body(body: dict[str, Any]) -> JsonBody:
    """The request's JSON, encoded once. orjson, not the client's json.dumps: a batch of
    1,000 readers is ~1 MB of JSON, and the standard encoder took ~11 ms of it, holding the
    lock the thread building the next batch needs (~1.3 s of a 100,000 send;
    benchmarks/README.md)."""
    return JsonBody(orjson.dumps(body))


def mail_send_endpoint(sg: Any) -> Any:
    """The official client's /v3/mail/send, with headers of its own that say the body is
    already JSON text (the client's are shared by every endpoint, so they stay as they are)."""
    endpoint = sg.client.mail.send
    endpoint.request_headers = {**endpoint.request_headers, "Content-Type": JSON_TEXT}
    return endpoint


def _no_answer(exc: BaseException, what: str, attempt: int, host: str) -> BatchResult:
    """Refused or unknown host: never sent. Anything else: it may have been accepted."""
    if _unreachable(exc):
        return BatchResult(
            "failed",
            attempts=attempt,
            stop=True,
            error=f"cannot reach SendGrid at {host} ({_network_reason(exc)}); {what} was not sent",
            hint="Check SENDGRID_API_HOST and the network, then run the same command again.",
        )
    return BatchResult(
        "uncertain",
        attempts=attempt,
        error=f"no answer from SendGrid for {what} ({_network_reason(exc)}); "
        "it may or may not have been accepted",
    )


def _rate_limited(wait: float, most: float, what: str, attempt: int) -> BatchResult:
    """A 429 asking for longer than a send waits: every batch after it would be refused the
    same way, so the run stops and says when SendGrid will take mail again."""
    after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=wait)
    return BatchResult(
        "failed",
        status=429,
        attempts=attempt,
        stop=True,
        error=f"SendGrid's rate limit: it asked to wait {_duration(wait)} before {what} is "
        f"tried again, longer than a send waits ({_duration(most)}); it was not sent",
        hint=f"Run the same command again after {after:%H:%M} UTC: nothing already sent "
        "goes twice.",
    )


def describe_wait(wait: float, status: int, what: str) -> str:
    """One line for a wait before a retry, for the manager watching the run. Only a 429 is
    SendGrid asking for the wait; after a 5xx it is this tool's own pause before retrying."""
    if status != 429:
        return (
            f"SendGrid answered HTTP {status} (a server error): trying {what} again in "
            f"{_duration(math.ceil(wait))}; the run goes on by itself."
        )
    return (
        f"SendGrid asked to wait {_duration(math.ceil(wait))} (HTTP 429: too many requests) "
        f"before trying {what} again; the run goes on by itself."
    )


def _duration(seconds: float) -> str:
    """500 -> '8 min 20 s', 120 -> '2 min', 42 -> '42 s'."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours} h"] * bool(hours) + [f"{minutes} min"] * bool(minutes)
    return " ".join(parts + [f"{secs} s"] * bool(secs or not parts))


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _retryable(status: int) -> bool:
    return status == 429 or 500 <= status < 600


def _refused(status: int, detail: str, what: str, attempt: int) -> BatchResult:
    """An HTTP error that is final: 429/5xx after every retry (failed, the run goes on) or
    a refusal (failed, and the run stops: the next batch would be refused too)."""
    if _retryable(status):
        return BatchResult(
            "failed",
            status=status,
            attempts=attempt,
            error=f"SendGrid answered HTTP {status} to {what} {_times(attempt)} "
            f"(last: {detail or 'no detail'}); it was not accepted",
        )
    template, hint = _REFUSALS.get(
        status, (f"SendGrid refused {{what}} with HTTP {status}: " + "{detail}", None)
    )
    return BatchResult(
        "failed",
        status=status,
        attempts=attempt,
        stop=True,
        error=template.format(what=what, detail=detail or "no detail"),
        hint=hint,
    )


def _with_change(result: BatchResult, change: str | None) -> BatchResult:
    """A 400's hint naming what to change (see ``what_to_change``)."""
    if change is None:
        return result
    retried = "recipients of this batch were not sent and will be retried."
    hint = (
        f"Change {change}, then run the same command again; {retried}"
        if change
        else "SendGrid refused a part of the request that equip-mailer builds itself, not "
        f"in the campaign: report it with this message. {retried.capitalize()}"
    )
    return dataclasses.replace(result, hint=hint)


def _unreachable(exc: BaseException) -> bool:
    """Connection refused or an unknown host: the request never left, so it was not sent."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return isinstance(reason, ConnectionRefusedError | socket.gaierror)


def _network_reason(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "unknown host"
    if isinstance(reason, ConnectionResetError | http.client.RemoteDisconnected):
        return "connection reset"
    return type(reason).__name__ if not str(reason) else str(reason)
