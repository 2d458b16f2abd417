"""The outbox backend: one RFC 5322 ``.eml`` file per recipient, the default way out.

Needs no credentials and no server (``make demo`` sends here), and each file is the mail as
the reader would get it: tokens substituted exactly as SendGrid's substitutions would be.

Each segment's message is built once (outbox_template.py) and filled per reader, which is
~30x faster than building every message with the ``email`` package. That package still
builds the messages of readers the fast form does not cover, and all of them with
``builder="email"`` (the path the benchmark compares with); both give the same message.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import gc
import os
import re
import threading
from collections.abc import Callable, Iterator
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Self

from equip_mailer.send.batch import LIST_UNSUBSCRIBE_POST, Addressee, Batch, BatchResult, Content
from equip_mailer.send.campaign_mail import CampaignMail

from .outbox_files import WRITERS, FileLander
from .outbox_template import SegmentTemplate

BUILDERS = ("fast", "email")


def substitute(text: str, values: dict[str, str], pattern: re.Pattern | None = None) -> str:
    """Replace tokens exactly as SendGrid's substitutions would (longest token first)."""
    if not values:
        return text
    pattern = pattern or token_pattern(values)
    return pattern.sub(lambda m: values.get(m.group(0), m.group(0)), text)


def token_pattern(values: dict[str, str]) -> re.Pattern:
    return re.compile("|".join(re.escape(k) for k in sorted(values, key=len, reverse=True)))


class OutboxBackend:
    """Writes one ``.eml`` per recipient under ``<dir>/<campaign-id>/``.

    The file is named from the ledger id (outbox_files.py), so a re-run (even of an
    uncertain batch) overwrites the same file, whole, instead of creating a second copy.
    Test sends go to ``test/<segment>.eml``.

    Its files are written by ``writers`` threads (one: the thread sending the batch); with
    more, ``close`` (or a ``with`` block) stops them once the sending is done.
    """

    name = "outbox"
    # Batches at once (send/dispatch.py): while one batch's files are written, the loop
    # records the previous batch and claims the next (the ledger's database work runs
    # outside Python's lock), so the writer never waits for the ledger. 100,000 recipients
    # from a cold page cache: 12.0 -> 10.0 s (benchmarks/README.md). Batches still land one
    # after another (the folder's lander takes one at a time); a crash can leave two
    # uncertain: ``--retry-uncertain`` takes the files already written as proof of sending
    # (send/activity.py) and writes only the others, whole, under the same names.
    max_in_flight = 2

    def __init__(
        self,
        directory: Path,
        mail: CampaignMail,
        builder: str = "fast",
        writers: int = WRITERS,
    ):
        if builder not in BUILDERS:
            raise ValueError(f"builder must be one of {BUILDERS}, not {builder!r}")
        self.mail = mail
        self.folder = Path(directory) / mail.campaign_id
        self._folder = str(self.folder)
        self.builder = builder
        self.writers = writers
        self._landers: dict[str, FileLander] = {}  # folder -> its writer threads
        # (content, test copy, token names) -> its template; None: the email package only
        self._templates: dict[tuple[Content, bool, tuple[str, ...]], SegmentTemplate | None] = {}
        # Two send threads may ask for a folder's lander or a segment's template at once:
        # one each, never two (a second lander's threads would outlive close()). And
        # close() waits for the send_batch calls under way, or a batch still waiting for its
        # folder's lander (after Ctrl+C) would start writers again behind it.
        self._lock = threading.Condition()
        self._under_way = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the writer threads each folder's lander started (outbox_files.py; only with
        ``writers`` over one). Left alone they idle until the process ends, ``writers`` per
        folder for every backend made, which
        adds up in a process that makes many backends (the test suite, a caller of ``send``
        in-process).

        The backend stays usable: a batch sent after ``close`` starts its writers again, as
        the first batch did, and they need closing again. Refusing it instead would be a
        surprise with a cost: the send loop claims a batch before it calls ``send_batch``,
        so an error raised there leaves the batch's readers uncertain in the ledger (sent
        again only by a ``--retry-uncertain`` run), for files that could simply have been
        written. The threads are a cache of the backend, not a connection it must not
        outlive.

        Batches still being written (two may be in flight) are waited for first."""
        with self._lock:
            self._lock.wait_for(lambda: self._under_way == 0)
            for lander in list(self._landers.values()):
                lander.close()

    def send_batch(self, batch: Batch) -> BatchResult:
        with self._lock:
            self._under_way += 1
        try:
            return self._send_batch(batch)
        finally:
            with self._lock:
                self._under_way -= 1
                self._lock.notify_all()

    def _send_batch(self, batch: Batch) -> BatchResult:
        folder = str(self.folder / "test") if batch.test else self._folder
        by_email = [0]  # readers the email package built (its garbage is collected below)
        try:
            os.makedirs(folder, exist_ok=True)
            made = self.maker(batch, by_email)
            with self._lock:
                lander = self._landers.get(folder)
                if lander is None:
                    lander = self._landers[folder] = FileLander(folder, self.writers)
            lander.land_all(batch.addressees, made)
        except OSError as exc:
            return BatchResult(
                "failed",
                stop=True,
                error=f"cannot write to the outbox {self.folder} ({exc.strerror or exc})",
                hint="Check the folder exists and is writable (--outbox DIR).",
            )
        finally:
            # The email package's messages are cyclic garbage; the send loop pauses the
            # collector (its own objects are acyclic), so collect what this batch made.
            if by_email[0] and not gc.isenabled():
                gc.collect(0)
        return BatchResult("sent", message_id=None)

    def maker(
        self, batch: Batch, by_email: list[int] | None = None
    ) -> Callable[[Addressee], tuple[str, bytes]]:
        """(file name, bytes) for each reader of the batch: from the segment's template,
        or from the email package for a reader it does not cover (counted in
        ``by_email[0]``). Called from the writer threads, so it keeps no state per call."""
        fill = self.filler(batch)
        test_name = f"{batch.content.segment}.eml"
        first = batch.addressees[0].values if batch.addressees else {}
        pattern = token_pattern(first) if first else None
        counted = by_email if by_email is not None else [0]

        def make(a: Addressee) -> tuple[str, bytes]:
            data = fill(a) if fill is not None else None
            if data is None:
                counted[0] += 1
                same = a.values.keys() == first.keys()  # a batch's readers share tokens
                data = self.message(batch, a, pattern if same else None)
            return (test_name if batch.test else f"{a.ledger_id:06d}.eml"), data

        return make

    def messages(self, batch: Batch) -> Iterator[tuple[Addressee, bytes | None]]:
        """Each reader with their message from the segment's template, or None where the
        email package must build it (``message``)."""
        fill = self.filler(batch)
        for a in batch.addressees:
            yield a, fill(a) if fill is not None else None

    def filler(self, batch: Batch) -> Callable[[Addressee], bytes | None] | None:
        """A reader's message from the segment's template (None: the email package must
        build it); None when the batch has no template."""
        template = self.template(batch)
        if template is None:
            return None
        date_line = f"Date: {format_datetime(dt.datetime.now(dt.UTC))}\r\n"
        domain = template.domain
        # make_msgid's form, <time.pid.random.send id.ledger id@domain>, its time, pid and
        # random part drawn once per batch: the send id and the ledger id already make each
        # one unique, and the call per reader cost a tenth of the file's filling.
        stem = make_msgid(idstring=batch.send_id, domain=domain)[: -len(domain) - 2]
        tail = f"@{domain}>"

        def fill(a: Addressee) -> bytes | None:
            return template.fill(a, date_line, f"{stem}.{a.ledger_id}{tail}")

        return fill

    def template(self, batch: Batch) -> SegmentTemplate | None:
        """The batch's segment template (built on first use), None for the email package."""
        if self.builder != "fast" or not batch.addressees:
            return None
        key = (batch.content, batch.test, tuple(batch.addressees[0].values))
        with self._lock:
            return self._templates[key] if key in self._templates else self._new_template(key)

    def _new_template(self, key: tuple[Content, bool, tuple[str, ...]]) -> SegmentTemplate | None:
        c, test, tokens = key
        subject = ("[TEST] " + c.subject) if test else c.subject
        try:
            template = SegmentTemplate(self.mail, c.segment, subject, c.text, c.html, list(tokens))
        except (UnicodeError, ValueError):
            template = None  # needs SMTPUTF8: a non-ASCII sender address
        self._templates[key] = template
        return template

    def message(self, batch: Batch, a: Addressee, pattern: re.Pattern | None = None) -> bytes:
        """The mail this recipient would get, built by the email package: text part first,
        then HTML. What the fast path is held to, and its fallback."""
        c = batch.content
        values = a.values
        if values and pattern is None:
            pattern = token_pattern(values)
        subject = substitute(c.subject, values, pattern)
        msg = EmailMessage()
        msg["Subject"] = ("[TEST] " + subject) if batch.test else subject
        msg["From"] = Address(self.mail.sender_name or "", addr_spec=self.mail.sender_email)
        msg["To"] = Address(a.name or "", addr_spec=a.email)
        if self.mail.reply_to_email:
            msg["Reply-To"] = Address(
                self.mail.reply_to_name or "", addr_spec=self.mail.reply_to_email
            )
        msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
        msg["Message-ID"] = make_msgid(
            idstring=f"{batch.send_id}.{a.ledger_id}",
            domain=self.mail.sender_email.rpartition("@")[2],
        )
        msg["List-Unsubscribe"] = f"<{a.unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = LIST_UNSUBSCRIBE_POST
        for name, value in self.mail.list_headers(c.segment).items():
            msg[name] = value
        msg["X-Equip-Campaign"] = self.mail.campaign_id
        msg["X-Equip-Segment"] = c.segment
        msg["X-Equip-Recipient"] = str(a.ledger_id)
        # Quoted-printable as the fast path writes it, whatever the line lengths: left to
        # choose, the package sends a text part whose lines all fit as raw 8bit.
        text, html = substitute(c.text, values, pattern), substitute(c.html, values, pattern)
        msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
        msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
        try:
            return msg.as_bytes(policy=email.policy.SMTP)
        except (UnicodeEncodeError, ValueError):
            return msg.as_bytes(policy=email.policy.SMTPUTF8)
