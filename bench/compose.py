"""Benchmark of the composer's preview: one language of a form rendered by the real pipeline.

    .venv/bin/python bench/compose.py [--runs 15]

On a copy of the example site (SQLite in a temp folder), the zero-draft one-off's texts are put in a
composer form and each language is previewed as the dashboard does it (`composing.preview_html`: the
form checked, the Markdown rendered afresh, Jinja, MJML, links, personalised for a sample reader), with
the Markdown cache cleared each time (the text a person is typing is new every time). The baseline,
measured in the same run: `prepare()` of the same one-off from its files, no form, cache warm. Target:
under 300 ms per language preview.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.render import LANGUAGES, make_site  # noqa: E402
from newsletter.render.markdown import render_body  # noqa: E402
from newsletter.render.prepare import prepare, sample_context  # noqa: E402
from newsletter.schedule.compose import Form  # noqa: E402
from newsletter.schedule.config import load_schedules  # noqa: E402
from newsletter.web.admin import composing  # noqa: E402

NOW = datetime(2021, 4, 14, 9, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        site = make_site(Path(tmp))
        campaign = load_schedules(site).campaigns["zero-draft"]
        assert campaign.content is not None
        form = Form(
            id="zero-draft-composed",
            lists=["members", "drug-user-advocates"],
            languages=list(LANGUAGES),
            source="en",
            at="2021-04-28T09:00",
            timezone="Europe/Zurich",
            texts={
                lang: {"subject": t.subject, "preheader": t.preheader, "body": t.body}
                for lang, t in campaign.content.texts.items()
            },
        )
        print(f"preview of one language, median of {args.runs} runs (p95 in brackets)")
        worst = 0.0
        for lang in LANGUAGES:
            previews, baseline = [], []
            for _ in range(args.runs):
                render_body.cache_clear()
                t = time.perf_counter()
                html = composing.preview_html(site, form, lang, NOW)
                previews.append(time.perf_counter() - t)
                t = time.perf_counter()
                prepare(
                    site,
                    template="message",
                    language=lang,
                    context=sample_context(site, lang, NOW),
                    campaign_id="zero-draft",
                    now=NOW,
                    content=campaign.content,
                )
                baseline.append(time.perf_counter() - t)
            assert "<mj-" not in html and len(html) > 5000, html[:200]
            p50, base = statistics.median(previews), statistics.median(baseline)
            p95 = sorted(previews)[int(len(previews) * 0.95) - 1]
            worst = max(worst, p50)
            print(
                f"   {lang}: preview {p50 * 1000:6.1f} ms ({p95 * 1000:6.1f})   "
                f"baseline prepare() {base * 1000:6.1f} ms   ratio {p50 / base:.2f}"
            )
        verdict = "met" if worst < 0.3 else "NOT met"
        print(f"slowest language median {worst * 1000:.1f} ms: 300 ms target {verdict}")
        site.close()


if __name__ == "__main__":
    main()
