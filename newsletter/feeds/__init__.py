"""The feeds stage: the hub's RSS and Atom feeds pulled into stored, sanitised items.

config.py    the [[feeds]] of newsletter.toml: read, validated, added, removed; `newsletter check`
fetch.py     httpx and local files: conditional GET, redirects, 410, timeouts, politeness
parse.py     bytes + headers -> items (pure: feedparser, dedupe keys, languages, content hash)
sanitize.py  HTML made safe for email (nh3 allow-list on top of feedparser's sanitiser)
store.py     feeds and items in the store: sync, upsert, seeding, errors
pull.py      pull_feeds(site): one feed after another, a broken one never stops the rest
query.py     items_since / count_items_since for digests, listings for the CLI
"""
