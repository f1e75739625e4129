"""Fixtures for the feeds tests (registered in tests/conftest.py).

`feed_server` is a real HTTP server on 127.0.0.1 (port 0) answering scripted routes: feed bodies with
ETag / Last-Modified (and 304 when the client already has them), redirects, errors, slow answers,
gzip. `rss()` and `atom()` write small feed documents.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

import pytest


@dataclass
class Answer:
    """What the server says for one path."""

    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None  # sent, and If-None-Match equal to it gets a 304
    last_modified: str | None = None  # sent, and an equal If-Modified-Since gets a 304
    location: str | None = None  # for redirects
    delay: float = 0.0  # seconds before answering
    gzip: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    status: int


class FeedServer:
    """Routes: path -> Answer, or a callable taking the request headers and returning an Answer."""

    def __init__(self) -> None:
        self.routes: dict[str, Answer | Callable[[dict[str, str]], Answer]] = {}
        self.requests: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                headers = {k.lower(): v for k, v in self.headers.items()}
                route = server.routes.get(self.path)
                answer = Answer(b"not found", 404, "text/plain") if route is None else route
                if callable(answer):
                    answer = answer(headers)
                status = answer.status
                if status == 200 and (
                    (answer.etag and headers.get("if-none-match") == answer.etag)
                    or (answer.last_modified and headers.get("if-modified-since") == answer.last_modified)
                ):
                    status = 304
                server.requests.append(Seen(self.path, headers, status))
                if answer.delay:
                    time.sleep(answer.delay)
                body = b"" if status == 304 else answer.body
                if answer.gzip and body:
                    body = gzip.compress(body)
                try:
                    self.send_response(status)
                    if status != 304:
                        self.send_header("Content-Type", answer.content_type)
                    if answer.gzip:
                        self.send_header("Content-Encoding", "gzip")
                    if answer.etag:
                        self.send_header("ETag", answer.etag)
                    if answer.last_modified:
                        self.send_header("Last-Modified", answer.last_modified)
                    if answer.location:
                        self.send_header("Location", server.url(answer.location))
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def route(self, path: str, answer: Answer | Callable[[dict[str, str]], Answer]) -> str:
        self.routes[path] = answer
        return self.url(path)

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    server.start()
    yield server
    server.stop()


def http_date(when: Any) -> str:
    return format_datetime(when, usegmt=True)


def rss(
    items: list[dict[str, Any]],
    *,
    title: str = "Test hub",
    language: str | None = "en",
    encoding: str = "UTF-8",
) -> str:
    """A WordPress-style RSS 2.0 document. Item keys: title, link, guid, description, content,
    pubDate, categories, creator, enclosure (url, type); values are inserted as given (content and
    description in CDATA)."""
    parts = [
        f'<?xml version="1.0" encoding="{encoding}"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">',
        f"<channel><title>{escape(title)}</title><link>https://hub.example.org/</link>",
        "<description>Test feed</description>",
    ]
    if language:
        parts.append(f"<language>{language}</language>")
    for item in items:
        parts.append("<item>")
        if "title" in item:
            parts.append(f"<title>{escape(item['title'])}</title>")
        if "link" in item:
            parts.append(f"<link>{escape(item['link'])}</link>")
        if "guid" in item:
            parts.append(f'<guid isPermaLink="false">{escape(item["guid"])}</guid>')
        if "creator" in item:
            parts.append(f"<dc:creator><![CDATA[{item['creator']}]]></dc:creator>")
        if "pubDate" in item:
            parts.append(f"<pubDate>{item['pubDate']}</pubDate>")
        for category in item.get("categories", []):
            parts.append(f"<category><![CDATA[{category}]]></category>")
        if "description" in item:
            parts.append(f"<description><![CDATA[{item['description']}]]></description>")
        if "content" in item:
            parts.append(f"<content:encoded><![CDATA[{item['content']}]]></content:encoded>")
        if "enclosure" in item:
            url, kind = item["enclosure"]
            parts.append(f'<enclosure url="{escape(url)}" length="1000" type="{kind}"/>')
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "\n".join(parts)


def atom(entries: list[dict[str, Any]], *, lang: str | None = None, base: str | None = None) -> str:
    """An Atom 1.0 document. Entry keys: id, title, link, updated, summary, summary_type, content,
    content_type, lang, categories; content and summary are escaped as text of the element."""
    attrs = ' xmlns="http://www.w3.org/2005/Atom"'
    if lang:
        attrs += f' xml:lang="{lang}"'
    if base:
        attrs += f' xml:base="{base}"'
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f"<feed{attrs}><title>Atom hub</title><id>tag:hub.example.org,2021:feed</id>",
        "<updated>2021-05-01T00:00:00Z</updated>",
    ]
    for entry in entries:
        lang_attr = f' xml:lang="{entry["lang"]}"' if "lang" in entry else ""
        parts.append(f"<entry{lang_attr}>")
        parts.append(f"<id>{escape(entry['id'])}</id>")
        parts.append(f"<title>{escape(entry.get('title', ''))}</title>")
        if "link" in entry:
            parts.append(f'<link rel="alternate" href="{escape(entry["link"])}"/>')
        parts.append(f"<updated>{entry.get('updated', '2021-05-01T00:00:00Z')}</updated>")
        for category in entry.get("categories", []):
            parts.append(f'<category term="{escape(category)}"/>')
        if "summary" in entry:
            kind = entry.get("summary_type", "html")
            parts.append(f'<summary type="{kind}">{escape(entry["summary"])}</summary>')
        if "content" in entry:
            kind = entry.get("content_type", "html")
            parts.append(f'<content type="{kind}">{escape(entry["content"])}</content>')
        parts.append("</entry>")
    parts.append("</feed>")
    return "\n".join(parts)
