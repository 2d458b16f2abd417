"""The assembled app: unknown paths get the friendly 404 page, another package's routes
mount beside the tracking ones and reach the same store, and ``equip-mailer serve`` runs it
all under uvicorn.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from support.service import running_app
from support.tracking_data import REPO

from equip_mailer.track.app import create_app
from equip_mailer.track.state import Service


def test_unknown_paths_get_the_not_found_page(service):
    _, client = service
    missing = client.get("/nothing-here")
    assert missing.status_code == 404 and "this link is not valid" in missing.text


def test_another_packages_routes_mount_beside_the_service(settings, engine, campaign):
    """How a later package (sign-up pages, team pages) adds its pages: module-level handlers
    that find the store with ``Service.of(request)``, passed in as routes."""

    async def campaigns(request: Request) -> JSONResponse:
        with Service.of(request).engine.connect() as conn:
            ids = [r.id for r in conn.exec_driver_sql("SELECT id FROM campaigns")]
        return JSONResponse({"campaigns": ids})

    app = create_app(settings, engine, extra_routes=[Route("/team/campaigns", campaigns)])
    with running_app(app) as base:
        assert httpx.get(base + "/team/campaigns").json() == {"campaigns": [campaign.id]}
        assert httpx.get(base + "/healthz").json()["db"] == "ok"  # the service's own, still


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_command_runs_the_service(tmp_path, isolated_env):
    from click.testing import CliRunner

    from equip_mailer.cli import main

    help_text = CliRunner().invoke(main, ["serve", "--help"]).output
    assert "Example" in help_text and "--port" in help_text and "--host" in help_text

    port = _free_port()
    env = {
        **os.environ,
        "EQUIP_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "EQUIP_LINK_SECRET": "serve-test-secret",
        "XDG_CONFIG_HOME": str(isolated_env / ".config"),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from equip_mailer.cli import main; main()",
            "serve",
            "--port",
            str(port),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"serve did not start: {proc.stdout.read()}") from None
                time.sleep(0.1)
        assert response.status_code == 200 and response.json()["db"] == "ok"
        # Without a webhook key the webhook refuses, and says how to fix it.
        assert (
            httpx.post(f"http://127.0.0.1:{port}/webhooks/sendgrid", content=b"[]").status_code
            == 403
        )
    finally:
        proc.terminate()
        output = proc.communicate(timeout=15)[0]
    assert "SENDGRID_WEBHOOK_PUBLIC_KEY" in output
    assert (tmp_path / "serve.db").exists()
