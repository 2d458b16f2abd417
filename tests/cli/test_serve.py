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


def test_serve_on_a_busy_port_says_so_in_one_sentence(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            main,
            ["serve", "--port", str(port)],
            env={
                "EQUIP_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
                "EQUIP_LINK_SECRET": LINK_SECRET,
            },
        )
    assert result.exit_code == 1
    assert result.stderr.splitlines()[1:] == [
        f"Error: port {port} on 127.0.0.1 is already in use (is another `equip-mailer serve` "
        "running?)",
        "Hint: Stop the other program, or choose another port with --port.",
    ]
    assert not (tmp_path / "serve.db").exists()  # refused before the store was opened


def _start_serve(tmp_path, isolated_env, **extra_env):
    port = _free_port()
    env = {
        **os.environ,
        "EQUIP_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "EQUIP_LINK_SECRET": LINK_SECRET,
        "XDG_CONFIG_HOME": str(isolated_env / ".config"),
        **extra_env,
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
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc, port
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"serve did not start: {proc.stdout.read()}") from None
            time.sleep(0.1)


def test_a_client_that_disconnects_mid_body_is_one_log_line(tmp_path, isolated_env):
    """Found in review: each such request logged a 77-line traceback."""
    from support.tracking_data import SendGridKey, load_signer

    key = SendGridKey(load_signer())
    proc, port = _start_serve(tmp_path, isolated_env, SENDGRID_WEBHOOK_PUBLIC_KEY=key.public)
    try:
        for _ in range(2):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(
                    b"POST /webhooks/sendgrid HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
                    b'[{"event":'
                )
                time.sleep(0.3)  # the body has begun, then the client goes away
        time.sleep(1)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200  # still serving
    finally:
        proc.terminate()
        output = proc.communicate(timeout=15)[0]
    assert "Traceback" not in output, output
    gone = [line.split(" ", 2)[2] for line in output.splitlines() if "disconnected" in line]
    assert (
        gone
        == [
            "WARNING equip_mailer.track: POST /webhooks/sendgrid: the client disconnected before "
            "sending the whole body; nothing was done"
        ]
        * 2
    ), output
