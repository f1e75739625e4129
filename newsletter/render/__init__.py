"""The render stage: MJML + Jinja2 templates, Babel catalogs, personalised MIME messages.

prepared = prepare_occurrence(site, occurrence_id, "fr", now)   # once per (campaign, language)
for recipient in recipients:                                     # then per recipient, fast
    transport.send(prepared.mime(recipient))
"""

from newsletter.render.message import Prepared, Recipient
from newsletter.render.prepare import prepare, prepare_occurrence, resolve_language, sample_context

__all__ = ["Prepared", "Recipient", "prepare", "prepare_occurrence", "resolve_language", "sample_context"]
