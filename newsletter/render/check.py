"""`newsletter check` for the render stage: every template in every language, and the catalogs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from newsletter.errors import RenderError
from newsletter.render import catalogs
from newsletter.render.environment import template_names
from newsletter.render.mjml import lint_source
from newsletter.render.prepare import prepare, sample_context
from newsletter.site import Site

# Sample data is dated in the hub's busy season; any fixed date would do, none depends on the clock.
SAMPLE_NOW = datetime(2021, 4, 14, 9, 0, tzinfo=UTC)


def check_site(site: Site) -> Any:
    """Lint every template file, render each template in each language (strict), count translations."""
    from newsletter.findings import CheckReport

    report = CheckReport("templates")
    templates_dir = site.templates_dir
    names = template_names(templates_dir)
    if not names:
        report.errors.append(f"{templates_dir}: no templates (*.mjml)")
        return report
    for path in sorted(templates_dir.rglob("*.mjml")):
        report.errors.extend(lint_source(path))

    broken_catalogs: set[str] = set()
    for language in site.languages:
        po = catalogs.po_path(templates_dir, language)
        if not po.exists():
            if language != site.default_language:
                report.warnings.append(
                    f"{po}: no catalog for {language!r}; run `newsletter i18n update` and translate it"
                )
            continue
        try:
            catalogs.read_catalog(po, language)
        except RenderError as exc:
            report.errors.append(str(exc))
            broken_catalogs.add(language)

    rows = []
    for name in names:
        row = [name]
        for language in site.languages:
            if language in broken_catalogs:
                row.append("catalog broken")
                continue
            try:
                prepare(
                    site,
                    template=name,
                    language=language,
                    context=sample_context(site, language, SAMPLE_NOW),
                    campaign_id=f"check-{name}",
                    now=SAMPLE_NOW,
                    strict=True,
                    postal_address="Postal address",
                )
            except RenderError as exc:
                message = str(exc)
                if message not in report.errors:
                    report.errors.append(message)
                row.append("error")
            else:
                row.append("ok")
        rows.append(row)
    report.tables.append(("templates × languages", ["template", *site.languages], rows))

    msgids = catalogs.template_messages(templates_dir)
    table = []
    for language in site.languages:
        if language in broken_catalogs:
            table.append([language, "-", "-", "-", "catalog broken"])
            continue
        found = catalogs.completeness(templates_dir, language, msgids)
        table.append(
            [
                language,
                f"{found.translated}/{found.total} ({found.percent:.0f}%)",
                str(len(found.missing)),
                str(len(found.fuzzy)),
                "; ".join(repr(m) for m in (found.missing + found.fuzzy)[:3]),
            ]
        )
        if (found.missing or found.fuzzy) and language != site.default_language:
            report.warnings.append(
                f"{catalogs.po_path(templates_dir, language)}: {len(found.missing)} missing and "
                f"{len(found.fuzzy)} fuzzy translation(s); they fall back to "
                f"{site.fallback_chain(language)[1:]}"
            )
    report.tables.append(
        ("translations", ["language", "translated", "missing", "fuzzy", "first untranslated"], table)
    )
    return report
