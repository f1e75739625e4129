"""The audience fields of schedules.yaml: registrations and behavioural segments, valid and not."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.campaigns import Activity
from newsletter.schedule.config import ScheduleError, parse_schedules

HEAD = """events:
  - id: webinar-april
    title: {en: April}
    start: 2021-04-21T11:00
    timezone: UTC
    sessions:
      - {id: fr, language: fr, start: 2021-04-21T11:00, timezone: Africa/Abidjan}
campaigns:
  - id: signon-14d
    template: call_to_action
    audience: {lists: [members]}
    trigger: {at: 2021-05-01T09:00}
"""


def campaign(audience: str) -> str:
    return HEAD + (
        "  - id: follow-up\n    template: call_to_action\n"
        f"    audience: {audience}\n    trigger: {{at: 2021-05-02T09:00}}\n"
    )


def test_segment_and_registration_fields_parse(plain_site):
    schedules = parse_schedules(
        plain_site,
        campaign(
            "{lists: [members], clicked: {label: declaration-sign-on, campaigns: [signon-14d]},"
            " not_opened: {campaigns: [signon-14d]}, converted: false, within: 30d,"
            " not_registered_for: [webinar-april/fr]}"
        ),
    )
    audience = schedules.campaigns["follow-up"].audience
    assert audience.clicked == Activity(label="declaration-sign-on", campaigns=("signon-14d",))
    assert audience.not_opened == Activity(campaigns=("signon-14d",))
    assert audience.converted is False and audience.within == timedelta(days=30)
    assert audience.not_registered_for == ("webinar-april/fr",)
    registrants = parse_schedules(plain_site, campaign("{registered_for: webinar-april}"))
    assert registrants.campaigns["follow-up"].audience.lists == ()


@pytest.mark.parametrize(
    ("audience", "message"),
    [
        ("{languages: [en]}", "missing 'lists'"),
        ("{registered_for: webinar-may}", "registered_for: unknown event 'webinar-may'"),
        ("{registered_for: webinar-april/xx}", "has no session 'xx' (sessions: fr)"),
        ("{lists: [members], clicked: {campaigns: [nope]}}", "clicked: unknown campaign 'nope'"),
        ("{lists: [members], opened: {label: x}}", "unknown field 'label'"),
        ("{lists: [members], clicked: 3}", "clicked: expected a mapping"),
        ("{lists: [members], converted: maybe}", "converted: expected true or false"),
        ("{lists: [members], clicked: {}, within: soon}", "within:"),
        ("{lists: [members], within: 3d}", "within: applies to clicked"),
    ],
)
def test_bad_audience_fields_name_the_line_and_field(plain_site, audience, message):
    with pytest.raises(ScheduleError) as info:
        parse_schedules(plain_site, campaign(audience))
    text = str(info.value)
    assert message in text
    assert "schedules.yaml:" in text  # file:line:column


VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 50),
        st.sampled_from(["30d", "3d", "webinar-april", "webinar-april/fr", "signon-14d", "x/y", "", "1h"]),
        st.text(max_size=8),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["label", "campaigns", "lists", "x"]), inner, max_size=3),
    ),
    max_leaves=8,
)
KEYS = st.sampled_from(
    [
        "lists",
        "registered_for",
        "not_registered_for",
        "clicked",
        "not_clicked",
        "opened",
        "not_opened",
        "converted",
        "within",
        "include_machine",
        "unknown",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(KEYS, VALUES, max_size=5))
def test_any_audience_mapping_parses_or_is_reported(plain_site, audience):
    text = campaign(yaml.safe_dump(audience, default_flow_style=True).strip())
    try:
        schedules = parse_schedules(plain_site, text)
    except ScheduleError as exc:
        assert exc.errors and all(":" in str(e) for e in exc.errors)
        return
    parsed = schedules.campaigns["follow-up"].audience
    assert parsed.lists or parsed.registered_for
