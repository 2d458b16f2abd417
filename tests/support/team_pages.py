"""Driving the team pages over real HTTP in tests: the service under uvicorn with a team,
and signing in the way a person does (ask for a link, read it from the outbox, press the
button).

    with team_service(settings, engine, tmp_path) as svc:
        client = svc.client()
        svc.sign_in(client, "ann@nhs.example")
        client.get("/team/")
"""

from __future__ import annotations

import contextlib
import dataclasses
import email
import email.policy
import html
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from starlette.applications import Starlette

from equip_mailer import store
from equip_mailer.config import Settings
from equip_mailer.track.app import create_app

from .service import bound_socket, running_app

TEAM = ("ann@nhs.example", "bob@nhs.example")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r"https?://\S+/team/sign-in/[A-Za-z0-9_\-]+")


def csrf_token(page: str) -> str:
    found = CSRF.search(page)
    assert found, "the page has no CSRF token field"
    return html.unescape(found.group(1))


def sign_in_mails(outbox: Path) -> list[email.message.EmailMessage]:
    """Every sign-in mail in the outbox, oldest first."""
    folder = outbox / "notices"
    paths = sorted(folder.glob("*-team-sign-in.eml")) if folder.exists() else []
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in paths
    ]


def link_in(mail: email.message.EmailMessage) -> str:
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    found = LINK.search(body.get_content())
    assert found, "the sign-in mail holds no link"
    return found.group(0)


@dataclass
class TeamService:
    app: Starlette
    base_url: str
    outbox: Path
    public_url: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, follow_redirects=False, timeout=20)

    def delivered(self) -> None:
        """Wait until the service has sent every notice it was asked to."""
        assert self.app.state.service.notices.drain(timeout=20), "notices were not sent"

    def ask_for_link(self, client: httpx.Client, address: str) -> httpx.Response:
        form = client.get("/team/sign-in")
        return client.post(
            "/team/sign-in", data={"email": address, "csrf_token": csrf_token(form.text)}
        )

    def latest_link_path(self) -> str:
        """The path of the newest link in the outbox (the mail names the public URL)."""
        self.delivered()
        mails = sign_in_mails(self.outbox)
        assert mails, "no sign-in mail in the outbox"
        return link_in(mails[-1]).removeprefix(self.public_url)

    def use_link(self, client: httpx.Client, path: str) -> httpx.Response:
        page = client.get(path)
        assert page.status_code == 200, page.text
        return client.post(path, data={"csrf_token": csrf_token(page.text)})

    def sign_in(self, client: httpx.Client, address: str) -> None:
        self.ask_for_link(client, address)
        answer = self.use_link(client, self.latest_link_path())
        assert answer.status_code == 303 and answer.headers["location"] == "/team/", answer.text


@contextlib.contextmanager
def team_service(settings: Settings, engine, outbox: Path, team=TEAM) -> Iterator[TeamService]:
    """The service with ``team``, its public URL its own loopback address (so the links it
    mails open it), its notices written to ``outbox``."""
    sock = bound_socket()
    public_url = "http://{}:{}".format(*sock.getsockname()[:2])
    settings = dataclasses.replace(settings, team=tuple(team), public_url=public_url)
    app = create_app(settings, engine, notices_outbox=outbox)
    with running_app(app, sock=sock) as base_url:
        yield TeamService(app, base_url, outbox, public_url)


def add_uncertain_batch(engine, campaign_id: str, emails: list[str]) -> None:
    """A batch that got no answer (a timeout), its recipients left uncertain."""
    now = store.utcnow()
    with engine.begin() as conn:
        batch = conn.execute(
            store.batches.insert().values(
                campaign_id=campaign_id,
                segment="beginner",
                send_id=uuid.uuid4().hex,
                backend="sendgrid",
                state="uncertain",
                size=len(emails),
                attempts=1,
                error="timed out after 30 s",
                created_at=now,
            )
        ).inserted_primary_key[0]
        for email in emails:
            conn.execute(
                store.ledger.insert().values(
                    campaign_id=campaign_id,
                    email=email,
                    email_key=email,
                    segment="beginner",
                    state="uncertain",
                    batch_id=batch,
                    attempts=1,
                    created_at=now,
                    updated_at=now,
                )
            )
