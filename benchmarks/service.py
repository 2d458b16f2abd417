"""The tracking service the webhook and redirect benchmarks load: ``equip-mailer serve`` in a
subprocess on a free loopback port, over a store seeded as a finished send leaves it.

`tracking_service` is the shared resource both benchmarks use in turn (one process, one
SQLite file: the redirect then runs on a store that holds the webhook's events), stopped once
the last of them is done. `Service` takes any database URL, for benchmarks that need others.
"""

from __future__ import annotations

import base64
import datetime as dt
import importlib.util
import os
import subprocess
import sys
import time
import types
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness import Context, Figures
from benchmarks.measure import free_port, process_cpu_seconds, process_peak_rss_mb
from benchmarks.project import CAMPAIGN_ID, LINK_SECRET, REPO

SIGNER_PATH = REPO.parent / "shared" / "sendgrid" / "sign_events.py"
SEGMENTS = ("getting-started", "ready-for-action", "project-leads")


class Service:
    """`equip-mailer serve` in a subprocess on a free loopback port."""

    def __init__(
        self,
        work: Path,
        database_url: str,
        public_key: str,
        env: dict[str, str] | None = None,
        workers: int = 1,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(
            os.environ,
            EQUIP_DATABASE_URL=database_url,
            EQUIP_LINK_SECRET=LINK_SECRET,
            SENDGRID_WEBHOOK_PUBLIC_KEY=public_key,
            EQUIP_PUBLIC_URL=self.url,
            EQUIP_CONFIG=str(work / "no-config.toml"),
            XDG_CONFIG_HOME=str(work / "config"),
            **(env or {}),
        )
        env.pop("SENDGRID_API_KEY", None)
        self.log = open(work / f"serve-{self.port}.log", "wb")  # closed in stop()
        cli = [sys.executable, "-c", "from equip_mailer.cli import main; main()"]
        self.proc = subprocess.Popen(
            [*cli, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
            + (["--workers", str(workers)] if workers > 1 else []),
            cwd=str(work),
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        # Workers import the whole service again in their own processes: on a busy
        # 2-core machine that alone can take half a minute.
        self._wait(30 if workers == 1 else 120)

    def _wait(self, timeout: float = 30) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"equip-mailer serve exited ({self.proc.returncode}); see {self.log.name}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("equip-mailer serve did not come up")

    def cpu_seconds(self) -> float:
        """User + system CPU the service process has used so far (with --workers, the
        supervisor's and its live workers')."""
        return sum(process_cpu_seconds(pid) for pid in [self.proc.pid, *self.children()])

    def children(self) -> list[int]:
        """Processes the service started (uvicorn's workers, multiprocessing's helper)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                pids.append(int(stat.parent.name))
        return pids

    def peak_rss_mb(self) -> float | None:
        return process_peak_rss_mb(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@dataclass
class Seeded:
    """Ids of the seeded campaign, for tokens and events."""

    link_ids: list[int]
    ledger_ids: list[int]
    send_ids: list[str]
    urls: list[str]
    segments: tuple[str, ...] = SEGMENTS


def seed_tracking_store(db: Path | str, n_recipients: int) -> Seeded:
    """A campaign as a finished send leaves it: links registered, one batch per 1,000
    recipients, every ledger row sent. ``db``: a SQLite file, or any database URL."""
    import sqlalchemy as sa

    from equip_mailer import store
    from equip_mailer.compose.render.mail_links import LinkSpec
    from equip_mailer.send.links import register_links

    engine = store.open_store(db if isinstance(db, str) else f"sqlite:///{db}")
    specs = [
        LinkSpec(
            key=f"course-{i}",
            url=f"https://equip.example.org/courses/{i}"
            "?utm_source=equip-newsletter&utm_medium=email",
            label=f"Course {i}",
            course_id=f"course-{i}",
        )
        for i in range(1, 6)
    ]
    send_ids = [uuid.uuid4().hex for _ in range((n_recipients + 999) // 1000)]
    now = store.utcnow()
    with engine.begin() as conn:
        store.ensure_campaign(conn, CAMPAIGN_ID, "EQUIP courses")
        link_ids = register_links(conn, CAMPAIGN_ID, specs)
        conn.execute(store.batches.insert(), _batch_rows(send_ids, now))
        batch_ids = [
            r[0] for r in conn.execute(sa.select(store.batches.c.id).order_by(store.batches.c.id))
        ]
        conn.execute(store.ledger.insert(), _ledger_rows(n_recipients, batch_ids, now))
        ledger_ids = [
            r[0] for r in conn.execute(sa.select(store.ledger.c.id).order_by(store.ledger.c.id))
        ]
    engine.dispose()
    return Seeded(list(link_ids.values()), ledger_ids, send_ids, [s.url for s in specs])


def _batch_rows(send_ids: list[str], now: dt.datetime) -> list[dict[str, Any]]:
    return [
        {
            "campaign_id": CAMPAIGN_ID,
            "segment": SEGMENTS[b % 3],
            "send_id": send_id,
            "backend": "sendgrid",
            "state": "sent",
            "size": 1000,
            "attempts": 1,
            "created_at": now,
            "finished_at": now,
        }
        for b, send_id in enumerate(send_ids)
    ]


def _ledger_rows(n_recipients: int, batch_ids: list[int], now: dt.datetime) -> list[dict[str, Any]]:
    return [
        {
            "campaign_id": CAMPAIGN_ID,
            "email": f"reader{i}@nhs.example",
            "email_key": f"reader{i}@nhs.example",
            "first_name": "Reader",
            "last_name": str(i),
            "practice": "Example Surgery",
            "role": "GP",
            "qi_level": "none",
            "segment": SEGMENTS[(i // 1000) % 3],
            "state": "sent",
            "batch_id": batch_ids[i // 1000],
            "attempts": 1,
            "created_at": now,
            "updated_at": now,
            "sent_at": now,
        }
        for i in range(n_recipients)
    ]


def load_signer() -> Any:
    """The shared SendGrid signer, by path; a local equivalent when it is absent."""
    if SIGNER_PATH.exists():
        spec = importlib.util.spec_from_file_location("sign_events", SIGNER_PATH)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
        return base64.b64encode(
            key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        ).decode()

    def headers_for(
        key: ec.EllipticCurvePrivateKey, body: bytes, timestamp: int | None = None
    ) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        sig = base64.b64encode(key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
        return {
            "X-Twilio-Email-Event-Webhook-Signature": sig,
            "X-Twilio-Email-Event-Webhook-Timestamp": ts,
        }

    return types.SimpleNamespace(public_key_b64=public_key_b64, headers_for=headers_for)


@dataclass
class TrackingService:
    """The running service, its SQLite file, the seeded ids and the webhook signing key."""

    db: Path
    seed: Seeded
    signer: Any
    key: Any
    service: Service

    def close(self, users: list[Figures]) -> None:
        """Stamp the service's peak RSS on each user's figures, then stop it."""
        rss = self.service.peak_rss_mb()
        for figures in users:
            figures["service_peak_rss_mb"] = rss
        self.service.stop()


def start_tracking_service(ctx: Context) -> TrackingService:
    from cryptography.hazmat.primitives.asymmetric import ec

    db = ctx.work / "tracking.db"
    sizes = ctx.sizes
    seed = seed_tracking_store(db, max(sizes["webhook_recipients"], sizes["redirect_recipients"]))
    signer = load_signer()
    key = ec.generate_private_key(ec.SECP256R1())
    service = Service(ctx.work, f"sqlite:///{db}", signer.public_key_b64(key))
    return TrackingService(db, seed, signer, key, service)


def tracking_service(ctx: Context) -> TrackingService:
    """The tracking service shared by the benchmarks that declare ``shares=("tracking",)``."""
    return ctx.shared("tracking", start_tracking_service)
