"""`equip-mailer serve` as a person starts it: a real process on a free loopback port,
answering /healthz from its store and refusing webhook posts until a key is set."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
from click.testing import CliRunner
from support.link_secrets import LINK_SECRET
from support.tracking_data import REPO

from equip_mailer.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_command_runs_the_service(tmp_path, isolated_env):
    help_text = CliRunner().invoke(main, ["serve", "--help"]).output
    assert "Example" in help_text and "--port" in help_text and "--host" in help_text

    port = _free_port()
    env = {
        **os.environ,
        "EQUIP_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "EQUIP_LINK_SECRET": LINK_SECRET,
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
