"""render: one segment of the demo campaign through ``render_campaign(spec, segments=[id])``
(Jinja -> mjml-python -> premailer -> plain text), against the target of 30 ms per segment.

Also, for context: all segments in one call, the first call in a fresh process (templates
compiled), and premailer (what the pipeline inlines CSS with) against ``css_inline`` on the
same compiled HTML, as a ratio. They do not do the same job (ours inlines only the
``mj-style inline`` block), so the ratio says what inlining costs, not that css-inline is a
drop-in. The same child process then times the naive per-recipient pipeline that the send is
compared with (`benchmarks.send.naive_pipeline_seconds`), so both use warm templates.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.harness import Benchmark, Context, Figures, Row, Target
from benchmarks.measure import median_ms, peak_rss_mb, percentile
from benchmarks.project import DEMO_SPEC
from benchmarks.table import fmt

if TYPE_CHECKING:
    from equip_mailer.compose.campaign import Campaign

INLINE_STYLE = re.compile(
    r"<mj-style\b[^>]*\binline\s*=\s*[\"']inline[\"'][^>]*>(.*?)</mj-style>",
    re.IGNORECASE | re.DOTALL,
)


def child_render(work: Path, sizes: dict[str, int], params: dict[str, Any]) -> Figures:
    """In a fresh process: the first call, then the medians, then the inliners, then naive."""
    from benchmarks.send import naive_pipeline_seconds
    from equip_mailer.compose.render.pipeline import render_campaign
    from equip_mailer.compose.spec import load_campaign

    campaign = load_campaign(DEMO_SPEC, allow_past=True)
    segments = [s.id for s in campaign.segments]
    t = time.perf_counter()
    render_campaign(campaign)  # first call: templates compiled
    first_call_ms = (time.perf_counter() - t) * 1000

    runs = sizes["render_runs"]
    figures: Figures = {"segments": len(segments), "runs": runs}
    figures |= _segment_timings(campaign, segments, runs)
    figures["first_call_ms"] = first_call_ms
    figures |= _inliners(campaign, segments[0], runs)
    n = sizes["naive_recipients"]
    naive_s = naive_pipeline_seconds(campaign, n)
    figures |= {
        "naive_recipients": n,
        "naive_ms_per_recipient": naive_s / n * 1000,
        "peak_rss_mb": peak_rss_mb(),
    }
    return figures


def _segment_timings(campaign: Campaign, segments: list[str], runs: int) -> Figures:
    """Each segment alone (wall and CPU), and all in one call, ``runs`` times over."""
    from equip_mailer.compose.render.pipeline import render_campaign

    per_segment: list[float] = []
    per_segment_cpu: list[float] = []
    all_segments: list[float] = []
    for _ in range(runs):
        for seg in segments:
            t, c = time.perf_counter(), time.process_time()
            render_campaign(campaign, segments=[seg])
            per_segment.append(time.perf_counter() - t)
            per_segment_cpu.append(time.process_time() - c)
        t = time.perf_counter()
        render_campaign(campaign)
        all_segments.append(time.perf_counter() - t)
    return {
        "segment_ms": median_ms(per_segment),
        "segment_p90_ms": percentile(sorted(per_segment), 90) * 1000,
        "segment_cpu_ms": median_ms(per_segment_cpu),
        "all_segments_ms": median_ms(all_segments),
    }


def _inliners(campaign: Campaign, segment: str, runs: int) -> Figures:
    """premailer (what render uses) against css-inline, on the same compiled HTML."""
    import css_inline

    from equip_mailer.compose.render.css_inlining import inline_css
    from equip_mailer.compose.render.mjml_compile import compile_mjml
    from equip_mailer.compose.render.pipeline import render_mjml

    source = render_mjml(campaign, segment)
    compiled = compile_mjml(source)
    blocks = [m.group(1) for m in INLINE_STYLE.finditer(source)]
    inline_css(compiled, blocks)
    css_inline.inline(compiled)
    pm, ci = [], []
    for _ in range(max(runs, 5)):
        t = time.perf_counter()
        inline_css(compiled, blocks)
        pm.append(time.perf_counter() - t)
        t = time.perf_counter()
        css_inline.inline(compiled)
        ci.append(time.perf_counter() - t)
    return {
        "premailer_ms": median_ms(pm),
        "css_inline_ms": median_ms(ci),
        "premailer_over_css_inline": statistics.median(pm) / statistics.median(ci),
        "html_bytes": len(compiled),
    }


def run(ctx: Context) -> Figures:
    return ctx.child(child_render)


def rows(results: dict[str, Any]) -> list[Row]:
    r = results["render"]
    return [
        (
            "render: one segment, Jinja->MJML->premailer->text (median)",
            f"{fmt(r['segment_ms'])} ms",
        ),
        ("render: CPU per segment (median)", f"{fmt(r['segment_cpu_ms'])} ms"),
        (
            f"render: all {r['segments']} segments in one call (median)",
            f"{fmt(r['all_segments_ms'])} ms",
        ),
        (
            "render: first call in a fresh process (templates compiled)",
            f"{fmt(r['first_call_ms'])} ms",
        ),
        (
            "render: premailer / css-inline on the same HTML",
            f"{fmt(r['premailer_ms'], 2)} / {fmt(r['css_inline_ms'], 2)} ms = "
            f"{fmt(r['premailer_over_css_inline'])}x",
        ),
    ]


BENCHMARK = Benchmark(
    name="render",
    run=run,
    rows=rows,
    sizes={
        "full": {"render_runs": 30, "naive_recipients": 500},
        "smoke": {"render_runs": 3, "naive_recipients": 10},
    },
    targets=(Target("segment_ms", "<=", 30, "ms per segment"),),
)
