"""Start `equip-mailer` commands as separate processes, fast: a pre-imported parent forks.

A fresh interpreter spends over a second importing the send path; the crash test starts
dozens of sends, so this helper imports everything once and forks one child process per
command. Each child runs the real click command (`equip_mailer.cli.main`) with its own
argv and environment, exactly as the installed script would, and can be killed with
SIGKILL like any process.

Protocol on stdin/stdout, one JSON object per line:
  {"run": [args...], "env": {...}}  ->  {"pid": N}
  {"wait": N}                       ->  {"pid": N, "status": exit code or -signal}
"""

from __future__ import annotations

import json
import os
import sys

import sendgrid  # noqa: F401

import equip_mailer.compose.audience  # noqa: F401  (imported once, before any fork)
import equip_mailer.compose.render.personalisation  # noqa: F401
import equip_mailer.compose.render.pipeline  # noqa: F401
import equip_mailer.send.backends.outbox  # noqa: F401
import equip_mailer.send.backends.sendgrid  # noqa: F401
import equip_mailer.send.dispatch  # noqa: F401
import equip_mailer.send.ledger  # noqa: F401
import equip_mailer.send.schedule  # noqa: F401
import equip_mailer.send.trial_runs  # noqa: F401
from equip_mailer.cli import main


def _child(args: list[str], env: dict[str, str], log: str | None) -> None:
    os.environ.update(env)
    fd = os.open(log or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    code = 0
    try:
        main.main(args=args, prog_name="equip-mailer", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # pragma: no cover - reported through the exit status
        code = 99
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    out = sys.stdout
    for line in sys.stdin:
        msg = json.loads(line)
        if "run" in msg:
            pid = os.fork()
            if pid == 0:
                _child(msg["run"], msg.get("env", {}), msg.get("log"))
            out.write(json.dumps({"pid": pid}) + "\n")
        elif "wait" in msg:
            _, status = os.waitpid(int(msg["wait"]), 0)
            code = os.waitstatus_to_exitcode(status)
            out.write(json.dumps({"pid": msg["wait"], "status": code}) + "\n")
        out.flush()


if __name__ == "__main__":
    serve()
