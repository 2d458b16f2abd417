"""The stand-in SendGrid's Event Webhook: signed events for what it accepted, posted to the
real service the way SendGrid does (batches of events, some late, some never).

Hooked to ``FakeSendGrid.on_accept``: for every accepted personalization a ``processed`` and
a ``delivered`` event carrying our custom_args (flattened, as SendGrid posts them) are
scheduled after a random delay; a share of recipients is *lost* (no event ever comes, as
when the webhook is down for longer than SendGrid retries). Events go out in posts of up
to 100, signed with ``shared/sendgrid/sign_events.py``; a post that is not answered 200 is
retried, as SendGrid does. Because events are posted while the sender's request is still
open, many arrive before the ledger has even marked the batch uncertain.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import threading
import time

import httpx

from .fake_sendgrid import Accepted

POST_SIZE = 100


class EventFeed:
    def __init__(self, key, rng: random.Random, *, lost: float = 0.1, late: float = 1.0):
        self.key = key  # tracking_data.SendGridKey: signs each post
        self.rng = rng
        self.lost_share = lost
        self.late = late  # seconds: each recipient's events come 0..late after acceptance
        self.lock = threading.Lock()
        self.queue: list[tuple[float, int, dict]] = []
        self.seq = itertools.count()
        self.target: str | None = None
        self.lost: set[str] = set()  # addresses whose events never come
        self.arrived: set[str] = set()  # addresses with at least one event stored
        self.posts = 0
        self.busy = False
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="event-feed", daemon=True)
        self.thread.start()

    def aim(self, base_url: str | None) -> None:
        """Post to this service from now on (None: hold events)."""
        with self.lock:
            self.target = base_url

    def reset(self) -> None:
        with self.lock:
            self.queue.clear()
            self.lost.clear()
            self.arrived.clear()

    def accept(self, rows: list[Accepted]) -> None:
        now = time.monotonic()
        with self.lock:
            for a in rows:
                if self.rng.random() < self.lost_share:
                    self.lost.add(a.email.lower())
                    continue
                when = now + self.rng.uniform(0, self.late)
                for i, name in enumerate(("processed", "delivered")):
                    event = {
                        "email": a.email,
                        "timestamp": int(time.time()) + i,
                        "event": name,
                        "sg_message_id": f"{a.message_id}.filter0001.{a.recipient}",
                        "sg_event_id": f"{a.send_id}-{a.recipient}-{name}",
                        "campaign_id": a.campaign_id,
                        "segment": a.segment,
                        "send_id": a.send_id,
                        "recipient": a.recipient,
                    }
                    heapq.heappush(self.queue, (when + i * 0.05, next(self.seq), event))

    def drain(self, timeout: float = 60) -> None:
        """Wait until every scheduled event has been posted and stored."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self.queue and not self.busy:
                    return
            time.sleep(0.05)
        raise AssertionError("the event feed did not drain")

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)

    def _due(self) -> tuple[str | None, list[dict]]:
        now = time.monotonic()
        with self.lock:
            if self.target is None:
                return None, []
            out = []
            while self.queue and self.queue[0][0] <= now and len(out) < POST_SIZE:
                out.append(heapq.heappop(self.queue)[2])
            self.busy = bool(out)
            return self.target, out

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stopping.is_set():
                target, events = self._due()
                if not events:
                    time.sleep(0.02)
                    continue
                body = json.dumps(events).encode()
                while not self.stopping.is_set():
                    try:
                        r = client.post(
                            f"{target}/webhooks/sendgrid",
                            content=body,
                            headers=self.key.headers(body),
                        )
                        if r.status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.2)  # SendGrid retries a failed post later
                with self.lock:
                    self.posts += 1
                    self.arrived.update(e["email"].lower() for e in events)
                    self.busy = False
