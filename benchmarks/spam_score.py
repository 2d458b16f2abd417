"""SpamAssassin's verdict on the demo campaign: one mail per segment, score and rules hit.

A measurement, not a test and not a dependency: SpamAssassin (Debian's ``spamassassin``
package, version 4) is run with local rules only (``spamassassin -L -t``: no DNS blocklists,
no Razor/Pyzor, no network), so the figures say what the *content and headers* cost and do
not depend on the machine's reputation. Without ``spamassassin`` on the PATH the script says
so and exits 0.

The mail is what a reader would get: the demo campaign is sent, as ``make demo`` does, into
an outbox in a temporary folder (its own store, link secret and HOME, so nothing of the
project's own outbox or store is touched), and the first ``.eml`` of each segment is scored.
``--public-url`` sets ``EQUIP_PUBLIC_URL`` for that send: by default an https address, as a
real send needs (a loopback one adds ``WEIRD_PORT`` and numeric-host rules that a real
quarter never carries).

    .venv/bin/python benchmarks/spam_score.py            # table of score and rules per segment
    .venv/bin/python benchmarks/spam_score.py --json     # the same as JSON
    .venv/bin/python benchmarks/spam_score.py --keep     # keep the temporary outbox, print it
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_SPEC = ROOT / "campaigns" / "2019-04-equip-training.yaml"

# " 0.7 HTML_FONT_LOW_CONTRAST BODY: HTML font color similar or identical to" (report table)
_RULE_LINE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s+(.*)$")
_SCORE = re.compile(r"\((-?\d+(?:\.\d+)?) points, (-?\d+(?:\.\d+)?) required\)")


@dataclass(frozen=True)
class Rule:
    name: str
    points: float
    description: str


@dataclass(frozen=True)
class Verdict:
    segment: str
    file: str
    score: float
    required: float
    rules: list[Rule]


def send_demo(work: Path, public_url: str, spec: Path = DEMO_SPEC) -> Path:
    """Send the demo campaign into ``work/outbox`` as ``make demo`` does; the outbox folder."""
    outbox = work / "outbox"
    env = {
        **os.environ,
        "HOME": str(work),  # no user config file, no generated secret in the real HOME
        "EQUIP_DATABASE_URL": f"sqlite:///{work / 'store.db'}",
        "EQUIP_LINK_SECRET": secrets.token_urlsafe(48),
        "EQUIP_PUBLIC_URL": public_url,
    }
    env.pop("SENDGRID_API_KEY", None)
    cli = Path(sys.executable).with_name("equip-mailer")
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "equip_mailer.cli"]
    command += [
        "send",
        str(spec),
        "--allow-past",
        "--backend",
        "outbox",
        "--outbox",
        str(outbox),
        "--yes",
    ]
    done = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(
            f"spam_score: the demo send failed ({done.returncode}):\n{done.stderr}{done.stdout}"
        )
    return outbox


def one_per_segment(outbox: Path) -> dict[str, Path]:
    """The first .eml of each segment (by its X-Equip-Segment header), in file order."""
    chosen: dict[str, Path] = {}
    for path in sorted(outbox.rglob("*.eml")):
        if "test" in path.relative_to(outbox).parts or "notices" in path.relative_to(outbox).parts:
            continue
        with path.open("rb") as fh:
            headers = email.parser.BytesHeaderParser(policy=email.policy.default).parse(fh)
        segment = str(headers.get("X-Equip-Segment", "?"))
        chosen.setdefault(segment, path)
    return chosen


def score(path: Path, home: Path) -> tuple[float, float, list[Rule]]:
    """(score, required, rules hit) from ``spamassassin -L -t``'s report."""
    with path.open("rb") as fh:
        done = subprocess.run(
            ["spamassassin", "-L", "-t"],
            stdin=fh,
            capture_output=True,
            env={**os.environ, "HOME": str(home)},
        )
    out = done.stdout.decode("utf-8", "replace")
    start = out.find("Content analysis details:")
    if start < 0:
        sys.exit(f"spam_score: no report from spamassassin for {path}:\n{done.stderr.decode()}")
    report = out[start:]
    m = _SCORE.search(report)
    total, required = (float(m.group(1)), float(m.group(2))) if m else (float("nan"), 5.0)
    rules: list[Rule] = []
    table = report.split("\n---- ", 1)[-1].split("\n", 1)[-1]
    for line in table.splitlines():
        if not line.strip():
            break
        hit = _RULE_LINE.match(line)
        if hit:
            rules.append(Rule(hit.group(2), float(hit.group(1)), hit.group(3).strip()))
        elif rules:  # a description continued on the next line
            last = rules[-1]
            rules[-1] = Rule(last.name, last.points, f"{last.description} {line.strip()}")
    return total, required, sorted(rules, key=lambda r: (-r.points, r.name))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--public-url", default="https://equip.example.org")
    parser.add_argument("--spec", type=Path, default=DEMO_SPEC)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if shutil.which("spamassassin") is None:
        print(
            "spam_score: skipped: spamassassin is not installed "
            "(on Debian: apt-get install -y spamassassin)"
        )
        return 0
    work = Path(tempfile.mkdtemp(prefix="equip-spam-"))
    try:
        outbox = send_demo(work, args.public_url, args.spec.resolve())
        verdicts = []
        for segment, path in one_per_segment(outbox).items():
            total, required, rules = score(path, work)
            verdicts.append(Verdict(segment, str(path.relative_to(work)), total, required, rules))
        if args.json:
            print(json.dumps([asdict(v) for v in verdicts], indent=2))
        else:
            print(f"SpamAssassin, local rules only (spamassassin -L -t); {args.public_url}")
            for v in verdicts:
                print(f"\n{v.segment}: {v.score:.1f} points ({v.required:.1f} required)  {v.file}")
                for r in v.rules:
                    print(f"  {r.points:5.1f} {r.name:<24} {r.description}")
        if args.keep:
            print(f"\nkept: {work}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
