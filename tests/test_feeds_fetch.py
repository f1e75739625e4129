"""The fetching edge on its own: conditional GET, gzip, redirects, errors, politeness, local files."""

from __future__ import annotations

from pathlib import Path

from newsletter.feeds.fetch import USER_AGENT, Fetcher
from tests.support.feeds import Answer, rss

BODY = rss([{"guid": "1", "title": "Zero draft"}]).encode()


def fetcher(tmp_path: Path, **kw) -> Fetcher:
    return Fetcher(
        timeout=kw.pop("timeout", 1.0), host_delay=kw.pop("host_delay", 0.0), site_root=tmp_path, **kw
    )


def test_conditional_get_with_etag_and_last_modified(feed_server, tmp_path):
    modified = "Wed, 12 May 2021 10:00:00 GMT"
    url = feed_server.route("/feed", Answer(BODY, etag='"abc"', last_modified=modified))
    with fetcher(tmp_path) as f:
        first = f.fetch(url)
        assert (first.status, first.body, first.etag, first.last_modified) == (200, BODY, '"abc"', modified)
        assert first.headers["content-type"] == "application/rss+xml; charset=utf-8"
        again = f.fetch(url, etag=first.etag, last_modified=first.last_modified)
        assert again.not_modified and again.body is None and again.etag == '"abc"'
        only_date = f.fetch(url, last_modified=modified)
        assert only_date.not_modified
    sent = feed_server.hits("/feed")
    assert "if-none-match" not in sent[0].headers
    assert sent[1].headers["if-none-match"] == '"abc"' and sent[1].headers["if-modified-since"] == modified
    assert sent[0].headers["user-agent"] == USER_AGENT
    assert "gzip" in sent[0].headers["accept-encoding"]


def test_gzip_is_decoded_and_transfer_headers_dropped(feed_server, tmp_path):
    url = feed_server.route("/gz", Answer(BODY, gzip=True))
    with fetcher(tmp_path) as f:
        got = f.fetch(url)
    assert got.body == BODY and "content-encoding" not in got.headers


def test_a_304_to_an_unconditional_request_is_an_error(feed_server, tmp_path):
    url = feed_server.route("/odd", Answer(status=304))
    with fetcher(tmp_path) as f:
        got = f.fetch(url)
    assert not got.not_modified and "not conditional" in (got.error or "")


def test_permanent_redirect_chain(feed_server, tmp_path):
    final = feed_server.route("/c", Answer(BODY))
    feed_server.route("/a", Answer(status=301, location="/b"))
    feed_server.route("/b", Answer(status=302, location="/c"))
    with fetcher(tmp_path) as f:
        got = f.fetch(feed_server.url("/a"))
    # Only the leading permanent hop is recorded: /b answered with a temporary redirect.
    assert (got.url, got.permanent_url) == (final, feed_server.url("/b"))


def test_redirect_loop_and_errors(feed_server, tmp_path):
    feed_server.route("/loop", Answer(status=301, location="/loop"))
    feed_server.route("/gone", Answer(status=410))
    feed_server.route("/slow", Answer(BODY, delay=1.0))
    with fetcher(tmp_path, timeout=0.3) as f:
        assert f.fetch(feed_server.url("/loop")).error == "more than 5 redirects"
        gone = f.fetch(feed_server.url("/gone"))
        assert gone.gone and gone.status == 410
        assert f.fetch(feed_server.url("/slow")).error == "timed out after 0.3s"
    with fetcher(tmp_path) as f:
        refused = f.fetch("http://127.0.0.1:9/feed")  # the discard port: nothing listens
    assert refused.error and refused.error.startswith("ConnectError")


def test_politeness_pause_between_requests_to_one_host(feed_server, tmp_path):
    url = feed_server.route("/feed", Answer(BODY))
    now = [100.0]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    with fetcher(tmp_path, host_delay=2.0, clock=lambda: now[0], sleep=sleep) as f:
        f.fetch(url)
        now[0] += 0.5
        f.fetch(url)
        now[0] += 5.0
        f.fetch(url)
        other_host = url.replace("127.0.0.1", "localhost")
        f.fetch(other_host)
    assert pauses == [1.5]  # only the second request came too soon after the first


def test_local_files_by_path_and_file_url(tmp_path):
    (tmp_path / "feeds").mkdir()
    path = tmp_path / "feeds" / "hub.xml"
    path.write_bytes(BODY)
    with fetcher(tmp_path) as f:
        relative = f.fetch("feeds/hub.xml")
        assert relative.body == BODY and relative.etag and relative.etag.startswith('"sha256:')
        assert f.fetch(path.as_uri()).body == BODY
        assert f.fetch(str(path), etag=relative.etag).not_modified
        path.write_bytes(BODY + b"\n")
        assert f.fetch("feeds/hub.xml", etag=relative.etag).body == BODY + b"\n"
        missing = f.fetch("feeds/nope.xml")
    assert missing.error and "cannot read" in missing.error and "nope.xml" in missing.error
