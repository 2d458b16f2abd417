"""tests/setup-system.sh, the first thing `make test` runs on a bare machine: it waits while
another install holds the package manager's lock instead of failing the whole run at once."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "setup-system.sh"

FAKE_APT = """#!/bin/bash
n=$(cat "$COUNT" 2>/dev/null || echo 0); echo $((n + 1)) > "$COUNT"
echo "$*" >> "$CALLS"
if [ "$n" -lt "$BUSY" ]; then
  echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)" >&2
  exit 100
fi
[ -n "$FAIL" ] && { echo "E: Unable to locate package chromium" >&2; exit 100; }
exit 0
"""


def _apt_waiting(tmp_path: Path, busy: int, fail: str = "") -> subprocess.CompletedProcess:
    """Run the script's apt_waiting with an apt-get that is locked ``busy`` times."""
    fake = tmp_path / "bin" / "apt-get"
    fake.parent.mkdir()
    fake.write_text(FAKE_APT)
    fake.chmod(0o755)
    function = SCRIPT.read_text().split("apt_waiting() {", 1)[1].split("\n}\n", 1)[0]
    env = {
        **os.environ,
        "PATH": f"{fake.parent}:{os.environ['PATH']}",
        "COUNT": str(tmp_path / "count"),
        "CALLS": str(tmp_path / "calls"),
        "BUSY": str(busy),
        "FAIL": fail,
    }
    code = "apt_waiting() {" + function + "\n}\napt_waiting install -y -qq chromium\n"
    return subprocess.run(["bash", "-c", code], env=env, capture_output=True, text=True)


def test_a_held_lock_is_waited_for(tmp_path):
    done = _apt_waiting(tmp_path, busy=1)
    assert done.returncode == 0, done.stderr
    assert "waiting" in done.stdout
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == ["-o DPkg::Lock::Timeout=600 install -y -qq chromium"] * 2


def test_other_failures_are_not_retried_and_say_why(tmp_path):
    done = _apt_waiting(tmp_path, busy=0, fail="1")
    assert done.returncode == 1
    assert "Unable to locate package chromium" in done.stderr
    assert len((tmp_path / "calls").read_text().splitlines()) == 1
