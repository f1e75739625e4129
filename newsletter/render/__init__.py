"""The render stage: MJML + Jinja2 templates, Babel catalogs, personalised MIME messages.

    prepared = assemble.prepare_occurrence(site, schedules, occurrence_id, "fr", now)  # once per language
    for recipient in recipients:                                                     # then per recipient
        transport.send(prepared.mime(recipient))

Modules: `environment` (Jinja), `catalogs` (Babel), `mjml`, `links`, `content` (what a message says),
`prepare` (one template in one language), `assemble` (a campaign's message), `message` (MIME),
`preview` (files), `check`.
"""
