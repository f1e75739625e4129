"""The public routes under odd input: tokens, query strings and form fields as an attacker would send them.

Property: every answer is below 500; a redirect goes only to a URL the system stored (a tracked link)
or to a path of its own; what a form stores and shows back never runs (escaped, never raw markup).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import select

from newsletter.audience.lists import sync_lists
from newsletter.site import Site
from newsletter.store.tables import links, subscribers
from newsletter.tokens import Signer
from newsletter.urls import link_token, recipient_token
from tests.support.track import seed_message

ROUTES = (
    "/c/{a}/{b}",
    "/o/{a}.gif",
    "/s/{a}.gif",
    "/u/{a}",
    "/p/{a}",
    "/confirm/{a}",
    "/v/{a}",
    "/subscribe/{a}",
)
PURPOSES = ("recipient", "link", "view", "confirm", "conversion", "csrf")
# A value with markup characters shown back verbatim could close an attribute or open a tag.
MARKUP = re.compile(r"[<>\"']")
text = st.text(max_size=40)
# Field values a signed token may carry (no ':'), including digits that are not ASCII.
field = st.text(st.characters(exclude_characters=":"), max_size=12) | st.integers(-5, 10**25).map(str)


def _site(site_dir: Path, site_env: dict[str, str]) -> Site:
    site = Site.load(site_dir, environ=site_env)
    sync_lists(site)
    return site


def _tokens(signer: Signer, send: dict[str, Any]) -> st.SearchStrategy[str]:
    real = [recipient_token(signer, send["send_id"]), *(link_token(signer, i) for i in send["link_ids"])]
    signed = st.builds(
        lambda purpose, fields: signer.sign(purpose, *fields),
        st.sampled_from(PURPOSES),
        st.lists(field, max_size=3),
    )
    altered = st.builds(
        lambda token, at, char: token[:at] + char + token[at + 1 :],
        st.sampled_from(real),
        st.integers(0, 40),
        st.characters(),
    )
    return st.sampled_from([*real, "-", ""]) | signed | altered | text


def test_signed_tokens_with_non_ascii_digits_or_huge_ids_are_404_not_500(
    site_dir: Path, site_env: dict[str, str], live_server: Any
) -> None:
    site = _site(site_dir, site_env)
    seed_message(site.store)
    server = live_server(site)
    signer = Signer(site.settings["secret_key"])
    huge = str(10**25)
    paths = [
        *(f"/u/{signer.sign('recipient', n)}" for n in ("²", huge)),
        *(f"/c/{signer.sign('link', n)}/-" for n in ("²", huge)),
        *(f"/v/{signer.sign('view', n, 'en')}" for n in ("²", huge)),
        *(f"/confirm/{signer.sign_timed('confirm', n, '1')}" for n in ("²", huge)),
        f"/confirm/{signer.sign('confirm', '1', '1', 't²')}",
    ]
    for path in paths:
        answer = httpx.get(server.url + path)
        assert answer.status_code == 404, (path, answer.status_code)
    for n in ("²", huge):
        assert httpx.get(f"{server.url}/s/{signer.sign('conversion', n, n)}.gif").status_code == 200
    site.close()


def _allowed_redirect(location: str, base: str, stored: set[str]) -> bool:
    if any(location == url or location.startswith(url + ("&" if "?" in url else "?")) for url in stored):
        return True
    parts = urlsplit(location)
    if not parts.scheme and not parts.netloc:
        return location.startswith("/") and not location.startswith("//")
    return f"{parts.scheme}://{parts.netloc}" == base


def test_fuzzed_tracking_and_token_urls_answer_below_500_and_redirect_only_where_stored(
    site_dir: Path, site_env: dict[str, str], live_server: Any
) -> None:
    site = _site(site_dir, site_env)
    send = seed_message(site.store)
    with site.store.read() as conn:
        stored = {row.url for row in conn.execute(select(links.c.url))}
        send["link_ids"] = [row.id for row in conn.execute(select(links.c.id))]
    server = live_server(site)
    signer = Signer(site.settings["secret_key"])
    tokens = _tokens(signer, send)

    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=20) as client:

        @given(
            st.sampled_from(ROUTES),
            tokens,
            tokens,
            st.lists(st.tuples(st.sampled_from(["lang", "next", "r", "at", "url"]) | text, text), max_size=3),
            st.sampled_from(["GET", "POST", "HEAD"]),
            st.dictionaries(st.sampled_from(["csrf", "List-Unsubscribe", "action", "email", "list"]), text),
        )
        def visit(
            route: str, a: str, b: str, query: list[tuple[str, str]], method: str, form: dict[str, str]
        ) -> None:
            path = route.format(a=quote(a, safe=""), b=quote(b, safe=""))
            answer = client.request(method, path, params=query, data=form if method == "POST" else None)
            assert answer.status_code < 500, (method, path, answer.text[:300])
            if 300 <= answer.status_code < 400:
                location = answer.headers["location"]
                assert _allowed_redirect(location, server.url, stored), (path, location)

        visit()
    site.close()


def _csrf(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def test_fuzzed_subscribe_and_preferences_forms_answer_below_500_and_never_echo_markup(
    site_dir: Path, site_env: dict[str, str], live_server: Any
) -> None:
    site = _site(site_dir, {**site_env, "NEWSLETTER_SUBSCRIBE_RATE_LIMIT": "100000"})
    send = seed_message(site.store)
    server = live_server(site)
    r = recipient_token(Signer(site.settings["secret_key"]), send["send_id"])
    hostile = st.sampled_from(
        [
            "<script>alert(1)</script>",
            '"><img src=x onerror=alert(1)>',
            "javascript:alert(1)",
            "\x00",
            "Ω" * 300,
        ]
    )
    value = text | hostile | st.emails()

    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=20) as client:
        subscribe_csrf = _csrf(client, "/subscribe/members")
        preferences_csrf = _csrf(client, f"/p/{r}")

        @given(
            st.sampled_from(["subscribe", "preferences"]),
            st.fixed_dictionaries(
                {},
                optional={
                    "email": value,
                    "name": value,
                    "language": value | st.sampled_from(site.languages),
                    "timezone": value | st.timezone_keys(),
                    "website": st.just("") | text,
                    "action": st.sampled_from(["save", "leave", ""]) | text,
                },
            ),
            st.lists(value | st.sampled_from(["members", "key-populations"]), max_size=3),
        )
        @example(
            "subscribe", {"email": "nul@example.org", "name": "A\x00B"}, []
        )  # NUL: PostgreSQL refuses it
        # Time zones the zone database cannot even look up: a folder, and a name too long for a file.
        @example("preferences", {"timezone": "Europe"}, [])
        @example("subscribe", {"email": "tz@example.org", "timezone": "\u03a9" * 300}, [])
        def post(form_name: str, fields: dict[str, str], wanted: list[str]) -> None:
            if form_name == "subscribe":
                path, data = "/subscribe/members", {**fields, "csrf": subscribe_csrf}
            else:
                path, data = f"/p/{r}", {**fields, "csrf": preferences_csrf, "list": wanted}
            answer = client.post(path, data=data)
            assert answer.status_code < 500, (path, data, answer.text[:300])
            assert answer.status_code not in range(300, 400), answer.headers
            for given_value in [*fields.values(), *wanted]:
                if MARKUP.search(given_value):
                    assert given_value not in answer.text, (path, given_value)

        post()
    # What the subscribe form stored is the text as typed, shown escaped wherever it is shown.
    with site.store.read() as conn:
        names = [row.name for row in conn.execute(select(subscribers.c.name))]
    assert all(isinstance(n, str) for n in names)
    site.close()
