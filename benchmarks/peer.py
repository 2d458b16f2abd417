"""peer: equip-mailer beside a tool a user could pick instead, ``mailmerge`` (per-recipient
Jinja2 + SMTP) sending to a local SMTP sink (aiosmtpd), on the same generated list and a
comparable template, at 2,000 and 10,000 recipients: messages per second and the ratio.

mailmerge and aiosmtpd are installed only in the benchmark's own virtualenv
(benchmarks/.peer-venv, made on first use from PyPI, pinned in PEER_REQUIREMENTS), never in
equip-mailer's dependencies. Where that cannot be made (no network), the peer's figures are
absent and a note says why.

mailmerge's template is the demo's "getting-started" segment as equip-mailer renders it
(text and HTML, multipart/alternative), its tokens written as Jinja2 fields filled from
the database CSV: the reader's name and practice, and per-reader link and unsubscribe URLs
(the same shape as ours; mailmerge has no tracking of its own). One template for everyone,
where equip-mailer sends five segments: a little in mailmerge's favour. equip-mailer's side
is the same send as the outbox and send benchmarks (the outbox's files; SendGrid's HTTP
requests to the fake server), at the same sizes, each in a fresh process.
"""

from __future__ import annotations

import csv
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Benchmark, Context, Figures, Row
from benchmarks.measure import free_port
from benchmarks.project import PUBLIC_URL, write_project
from benchmarks.table import fmt

HERE = Path(__file__).resolve().parent
PEER_VENV = HERE / ".peer-venv"
PEER_REQUIREMENTS = ("mailmerge==2.3.0", "aiosmtpd==1.4.6")
SEGMENT = "getting-started"


class PeerUnavailable(Exception):
    """The peer's virtualenv could not be made (one sentence why)."""


def peer_venv() -> Path:
    """benchmarks/.peer-venv with PEER_REQUIREMENTS, made or refreshed as needed."""
    stamp = PEER_VENV / ".requirements"
    wanted = "\n".join(PEER_REQUIREMENTS)
    if stamp.exists() and stamp.read_text() == wanted:
        return PEER_VENV
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(PEER_VENV)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        subprocess.run(
            [str(PEER_VENV / "bin" / "pip"), "install", "--quiet", *PEER_REQUIREMENTS],
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        err = getattr(exc, "stderr", b"") or b""
        last = err.decode(errors="replace").strip().splitlines()[-1:] or [str(exc)]
        raise PeerUnavailable(
            f"could not install {', '.join(PEER_REQUIREMENTS)}: {last[0]}"
        ) from None
    stamp.write_text(wanted)
    return PEER_VENV


def mailmerge_files(project: Path, spec: Path, port: int) -> tuple[Path, Path, Path, int]:
    """mailmerge's template, database and server config for the project's list; the
    number of readers in the database."""
    from equip_mailer.compose.render.pipeline import render_campaign
    from equip_mailer.compose.render.tokens import TOKEN_RE
    from equip_mailer.compose.spec import load_campaign

    campaign = load_campaign(spec, allow_past=True)
    rendered = render_campaign(campaign, segments=[SEGMENT], pages_url=PUBLIC_URL)[SEGMENT]
    n_links = len(rendered.links)

    def jinja(text: str) -> str:
        # Literal Jinja2 delimiters in the mail stay literal; each token becomes its field.
        text = re.sub(r"(\{[{%#])", lambda m: "{{ '" + m.group(1) + "' }}", text)
        return TOKEN_RE.sub(lambda m: "{{" + m.group(1).strip("-").split("_", 1)[1] + "}}", text)

    boundary = "equip-peer-boundary-4bd1"
    template = project / "mailmerge_template.txt"
    template.write_text(
        "TO: {{name}} <{{email}}>\n"
        f"SUBJECT: {rendered.subject}\n"
        f"FROM: {campaign.sender.name} <{campaign.sender.email}>\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\n\n'
        f"--{boundary}\nContent-Type: text/plain; charset=utf-8\n\n{jinja(rendered.text)}\n"
        f"--{boundary}\nContent-Type: text/html; charset=utf-8\n\n{jinja(rendered.html)}\n"
        f"--{boundary}--\n",
        encoding="utf-8",
    )
    database = project / "mailmerge_database.csv"
    fields = ["email", "name", "first_name", "practice", "unsubscribe"]
    fields += [f"link_{k}" for k in range(n_links)]
    n = 0
    with database.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(fields)
        for name in ("staff.csv", "citizens.csv"):
            with (project / "lists" / name).open(newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    n += 1
                    writer.writerow(
                        [
                            row["email"],
                            f"{row['first_name']} {row['last_name']}",
                            row["first_name"],
                            row["practice"],
                            f"{PUBLIC_URL}/u/peer{n}",
                            *(f"{PUBLIC_URL}/c/peer{n}x{k}" for k in range(n_links)),
                        ]
                    )
    config = project / "mailmerge_server.conf"
    config.write_text(f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nsecurity = Never\n")
    return template, database, config, n


def run_mailmerge(venv: Path, project: Path, spec: Path) -> Figures:
    """mailmerge over the whole database to a fresh sink; its wall and CPU time."""
    port = free_port()
    template, database, config, n = mailmerge_files(project, spec, port)
    sink = subprocess.Popen(
        [str(venv / "bin" / "python"), str(HERE / "peer_sink.py"), str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sink.stdout is not None and sink.stdin is not None
        if sink.stdout.readline().strip() != "ready":
            raise RuntimeError("the SMTP sink did not start")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run(
            [
                str(venv / "bin" / "mailmerge"),
                "--no-dry-run",
                "--no-limit",
                "--template",
                str(template),
                "--database",
                str(database),
                "--config",
                str(config),
                "--output-format",
                "text",
            ],
            cwd=str(project),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=3600,
        )
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise RuntimeError(f"mailmerge failed: {proc.stderr[-1000:]}")
        sink.stdin.close()
        got = json.loads(sink.stdout.readline())
    finally:
        if sink.poll() is None:
            sink.terminate()
        sink.wait(timeout=30)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "recipients": n,
        "wall_s": wall,
        "cpu_s": cpu,
        "messages_per_s": n / wall if wall else 0.0,
        "sink_messages": got["messages"],
        "sink_mb": got["bytes"] / 1e6,
        "all_arrived": got["messages"] == n,
    }


def _equip(ctx: Context, n: int, backend: str, tag: str) -> Figures:
    """equip-mailer's send of the same list size, through the outbox or SendGrid."""
    from benchmarks import outbox, send

    if backend == "outbox":
        res = outbox._send(ctx, n, "fast", f"peer-outbox-{tag}")
        outbox._remove(Path(res.pop("project")))
    else:
        res = send._send_once(ctx, n, f"peer-sendgrid-{tag}")
    return {
        "recipients": res["sent"],
        "wall_s": res["wall_s"],
        "cpu_s": res["cpu_s"],
        "messages_per_s": res["sent"] / res["wall_s"] if res["wall_s"] else 0.0,
        "exactly_once": res["exactly_once"],
    }


def run(ctx: Context) -> Figures:
    try:
        venv = peer_venv()
    except PeerUnavailable as exc:
        ctx.note(f"peer: not measured: {exc}")
        return {"available": False, "why": str(exc)}
    res: Figures = {"available": True, "sizes": {}}
    for tag, key in (("small", "peer_small"), ("large", "peer_recipients")):
        n = ctx.sizes[key]
        project = ctx.work / f"peer-{tag}"
        spec = write_project(project, n)
        mm = run_mailmerge(venv, project, spec)
        ob = _equip(ctx, n, "outbox", tag)
        sg = _equip(ctx, n, "sendgrid", tag)
        res["sizes"][tag] = {
            "recipients": n,
            "mailmerge": mm,
            "outbox": ob,
            "sendgrid": sg,
            "outbox_over_mailmerge": ob["messages_per_s"] / mm["messages_per_s"],
            "sendgrid_over_mailmerge": sg["messages_per_s"] / mm["messages_per_s"],
        }
    large = res["sizes"]["large"]
    res["mailmerge_messages_per_s"] = large["mailmerge"]["messages_per_s"]
    res["outbox_over_mailmerge"] = large["outbox_over_mailmerge"]
    res["sendgrid_over_mailmerge"] = large["sendgrid_over_mailmerge"]
    ctx.note(
        f"peer: mailmerge {' '.join(r.split('==')[1] for r in PEER_REQUIREMENTS[:1])} "
        f"(Jinja2 + one SMTP connection per message) to aiosmtpd on 127.0.0.1, one template "
        f"(the {SEGMENT} segment) for every reader; equip-mailer sends five segments"
    )
    return res


def rows(results: dict[str, Any]) -> list[Row]:
    p = results["peer"]
    if not p.get("available"):
        return [("peer: mailmerge to a local SMTP sink", f"not measured ({p.get('why')})")]
    out: list[Row] = []
    for tag in ("small", "large"):
        s = p["sizes"][tag]
        mm, ob, sg = s["mailmerge"], s["outbox"], s["sendgrid"]
        out += [
            (
                f"peer, {s['recipients']:,} recipients: mailmerge -> aiosmtpd sink",
                f"{fmt(mm['wall_s'], 2)} s ({fmt(mm['messages_per_s'], 0)} msg/s, "
                f"CPU {fmt(mm['cpu_s'], 1)} s), all arrived: {fmt(mm['all_arrived'])}",
            ),
            (
                f"peer, {s['recipients']:,}: equip-mailer outbox / SendGrid path",
                f"{fmt(ob['messages_per_s'], 0)} / {fmt(sg['messages_per_s'], 0)} msg/s = "
                f"{fmt(s['outbox_over_mailmerge'], 1)}x / {fmt(s['sendgrid_over_mailmerge'], 1)}x "
                "mailmerge",
            ),
        ]
    return out


BENCHMARK = Benchmark(
    name="peer",
    run=run,
    rows=rows,
    sizes={
        "full": {"peer_small": 2_000, "peer_recipients": 10_000},
        "smoke": {"peer_small": 20, "peer_recipients": 50},
    },
)
