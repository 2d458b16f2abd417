"""Erasing a person at SendGrid too: ``equip-mailer forget`` files SendGrid's recipient erasure
job (``POST /v3/recipients/erasejob``, ``tsg_recipients_data_erasure_v3.json``) for the
address and records the job id, never the address, in the audit log.

SendGrid keeps its own copy of every recipient's address in its activity data and
suppression lists; a right-to-erasure request is only complete when that goes too. The job
runs at SendGrid asynchronously; its id is what to quote if SendGrid is asked about it.
One class per backend: ``SendGridErasure``; the outbox holds nothing at SendGrid.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.engine import Connection

from equip_mailer.errors import DeliveryError
from equip_mailer.team.audit import record

ACTOR = "equip-mailer forget"  # the audit log's actor: the command, not a team member
ACTION = "sendgrid erasure filed"


class Erasure(Protocol):
    def erase(self, addresses: list[str]) -> str: ...


class SendGridErasure:
    """The Recipients' Data Erasure API through the official client."""

    def __init__(self, api_key: str, *, host: str = "https://api.sendgrid.com", timeout=30.0):
        from equip_mailer.send.backends.sendgrid import client

        self.host = host.rstrip("/")
        self.timeout = float(timeout)
        self.sg = client(api_key, self.host, self.timeout)

    def erase(self, addresses: list[str]) -> str:
        """File the job; returns SendGrid's job id."""
        from equip_mailer.send.backends.sendgrid import call, json_answer

        what = "filing its recipient erasure job"
        try:
            resp = call(
                lambda: self.sg.client.recipients.erasejob.post(
                    request_body={"email_addresses": addresses}, timeout=self.timeout
                ),
                what,
                self.host,
            )
        except DeliveryError as exc:
            exc.hint = (
                "File it by hand in SendGrid (Settings > Privacy > Erase recipient data) or "
                "with an API key allowed to erase recipient data."
            )
            raise
        answer = json_answer(resp, what)
        if not isinstance(answer, dict) or not answer.get("job_id"):
            raise DeliveryError("SendGrid accepted the erasure job without a job id")
        return str(answer["job_id"])


def file_erasure(conn: Connection, erasure: Erasure, address: str) -> str:
    """File the job for one address and log its id (the address itself is not kept)."""
    job_id = erasure.erase([address])
    record(
        conn,
        ACTOR,
        ACTION,
        f"SendGrid recipient erasure job {job_id} filed for a forgotten person",
        target=("sendgrid_erasure_job", job_id),
    )
    return job_id
