"""Bad templates, catalogs and languages: each error names the file, the line and what to fix."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from newsletter.errors import RenderError
from newsletter.render.check import check_site
from newsletter.render.prepare import prepare, sample_context

NOW = datetime(2021, 4, 14, 9, tzinfo=UTC)


def render(render_site, template, language="en", strict=True):
    return prepare(
        render_site,
        template=template,
        language=language,
        context=sample_context(render_site, language, NOW),
        campaign_id="t",
        now=NOW,
        strict=strict,
    )


BASE = '{% extends "layouts/base.mjml" %}\n{% block content %}\n'


def test_jinja_syntax_error_names_file_and_line(make_site):
    render_site = make_site(
        templates={
            "broken.mjml": BASE + "<mj-section><mj-column>\n"
            "<mj-text>{% if items %}oops</mj-text>\n</mj-column></mj-section>\n{% endblock %}\n"
        }
    )
    with pytest.raises(RenderError) as err:
        render(render_site, "broken")
    assert re.search(r"templates/broken\.mjml:\d+: template syntax error", str(err.value))
    assert "endif" in str(err.value) or "endblock" in str(err.value)


def test_syntax_error_in_a_partial_names_the_partial(make_site):
    render_site = make_site(templates={"partials/greeting.mjml": "<mj-text>\n{{ _('Hello' }}\n</mj-text>\n"})
    with pytest.raises(RenderError, match=r"partials/greeting\.mjml:2: template syntax error"):
        render(render_site, "welcome")


def test_undefined_variable_is_an_error_in_strict_mode(make_site):
    render_site = make_site(
        templates={
            "undef.mjml": BASE + "<mj-section><mj-column>\n\n"
            "<mj-text>{{ speaker.name }}</mj-text>\n</mj-column></mj-section>\n{% endblock %}\n"
        }
    )
    with pytest.raises(RenderError) as err:
        render(render_site, "undef")
    assert re.search(r"templates/undef\.mjml:5: undefined variable: 'speaker' is undefined", str(err.value))
    assert render(render_site, "undef", strict=False).html  # outside checks, an unknown value renders empty


def test_invalid_mjml_names_file_and_line(make_site):
    render_site = make_site(
        templates={
            "badmjml.mjml": BASE + "<mj-section>\n  <mj-column>\n    <mj-text>Hi</mj-text>\n"
            "  </mj-section>\n</mj-column>\n{% endblock %}\n"
        }
    )
    with pytest.raises(RenderError) as err:
        render(render_site, "badmjml")
    assert re.search(
        r"templates/badmjml\.mjml:6: </mj-section> found but <mj-column> \(line 4\)", str(err.value)
    )


def test_unknown_mjml_tag_is_reported_by_check(make_site):
    render_site = make_site(
        templates={
            "typo.mjml": BASE + "<mj-section><mj-column>\n<mj-txt>Hi</mj-txt>\n"
            "</mj-column></mj-section>\n{% endblock %}\n"
        }
    )
    report = check_site(render_site)
    assert any(re.search(r"typo\.mjml:4: unknown MJML tag <mj-txt>", e) for e in report.errors)


def test_broken_catalog_names_file_and_line(make_site):
    render_site = make_site()
    po = render_site.templates_dir / "locale" / "fr" / "LC_MESSAGES" / "messages.po"
    lines = po.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line == 'msgid "Read more"')
    lines[at + 1] = 'msgst "Lire la suite"'  # a typo in the keyword
    po.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RenderError) as err:
        render(render_site, "digest", "fr")
    assert f"fr/LC_MESSAGES/messages.po:{at + 2}: broken catalog" in str(err.value)
    report = check_site(render_site)
    assert any(f"messages.po:{at + 2}" in e for e in report.errors)
    assert render(render_site, "digest", "es").language == "es"  # the other languages still render


def test_translation_with_wrong_placeholder_is_refused(make_site):
    render_site = make_site()
    po = render_site.templates_dir / "locale" / "es" / "LC_MESSAGES" / "messages.po"
    po.write_text(
        po.read_text(encoding="utf-8").replace('"Hola, %(name)s:"', '"Hola, %(nombre)s:"'), encoding="utf-8"
    )
    with pytest.raises(RenderError, match=r"es/LC_MESSAGES/messages\.po:\d+: broken translation of 'Hello"):
        render(render_site, "welcome", "es")


def test_unknown_language_and_template(render_site):
    with pytest.raises(RenderError, match=r"unknown language 'it'; this site offers en, fr, es, ru, pt"):
        render(render_site, "digest", "it")
    with pytest.raises(
        RenderError, match=r"templates/nope\.mjml: no such template.*templates: call_to_action"
    ):
        render(render_site, "nope")
