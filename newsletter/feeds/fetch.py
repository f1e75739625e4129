"""Fetching feed documents: httpx for http(s), the file system for `file://` URLs and plain paths.

Conditional GET (ETag, Last-Modified), gzip, a timeout, a User-Agent naming the tool, redirects
followed with permanent ones reported, and a pause between two requests to the same host.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from newsletter import __version__
from newsletter.feeds.config import local_path

__all__ = ["Fetched", "Fetcher", "USER_AGENT", "MAX_BYTES"]

USER_AGENT = f"newsletter/{__version__} (feed reader of the newsletter tool; python-httpx)"
ACCEPT = "application/atom+xml, application/rss+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
MAX_BYTES = 50_000_000  # a feed larger than this is an error, not something to hold in memory
MAX_REDIRECTS = 5
PERMANENT = (301, 308)
# Headers that describe the transfer, not the document: httpx already undid the gzip.
_TRANSFER_HEADERS = {"content-encoding", "content-length", "transfer-encoding"}


@dataclass(frozen=True)
class Fetched:
    url: str  # where the document was finally found
    status: int | None = None  # HTTP status; None for local files and failed requests
    body: bytes | None = None  # None unless there is a new document to parse
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    permanent_url: str | None = None  # set when a 301/308 moved the feed
    not_modified: bool = False
    gone: bool = False  # 410: the publisher says the feed is gone for good
    error: str | None = None


class Fetcher:
    """One HTTP client for a whole pull, keeping the politeness delay per host."""

    def __init__(
        self,
        *,
        timeout: float,
        host_delay: float,
        site_root: Path,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.timeout = timeout
        self.host_delay = host_delay
        self.site_root = site_root
        self._clock = clock
        self._sleep = sleep
        self._last_request: dict[str, float] = {}
        self.client = httpx.Client(
            timeout=timeout,
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            headers={"User-Agent": USER_AGENT, "Accept": ACCEPT},
            transport=transport,
        )

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> Fetched:
        """Fetch `url`, conditionally on the validators of the last successful fetch."""
        path = local_path(url, self.site_root)
        if path is not None:
            return _read_file(url, path, etag)
        return self._get(url, etag, last_modified)

    def _get(self, url: str, etag: str | None, last_modified: str | None) -> Fetched:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        self._wait_for(url)
        try:
            with self.client.stream("GET", url, headers=headers) as response:
                status = response.status_code
                permanent = _permanent_url(response)
                final = str(response.url)
                if status == 304:
                    if not (etag or last_modified):
                        return Fetched(
                            final, status, error="304 Not Modified to a request that was not conditional"
                        )
                    return Fetched(
                        final,
                        status,
                        etag=etag,
                        last_modified=last_modified,
                        permanent_url=permanent,
                        not_modified=True,
                    )
                if status == 410:
                    return Fetched(final, status, permanent_url=permanent, gone=True, error="410 Gone")
                if status >= 400:
                    reason = response.reason_phrase or ""
                    return Fetched(
                        final, status, permanent_url=permanent, error=f"HTTP {status} {reason}".strip()
                    )
                body = _read_capped(response)
                if body is None:
                    return Fetched(final, status, error=f"document larger than {MAX_BYTES} bytes")
                kept = {
                    k.lower(): v for k, v in response.headers.items() if k.lower() not in _TRANSFER_HEADERS
                }
                return Fetched(
                    final,
                    status,
                    body=body,
                    headers=kept,
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                    permanent_url=permanent,
                )
        except httpx.TimeoutException:
            return Fetched(url, error=f"timed out after {self.timeout:g}s")
        except httpx.TooManyRedirects:
            return Fetched(url, error=f"more than {MAX_REDIRECTS} redirects")
        except httpx.HTTPError as exc:
            return Fetched(url, error=f"{type(exc).__name__}: {exc}")
        finally:
            self._last_request[_host(url)] = self._clock()

    def _wait_for(self, url: str) -> None:
        last = self._last_request.get(_host(url))
        if last is not None and self.host_delay > 0:
            pause = self.host_delay - (self._clock() - last)
            if pause > 0:
                self._sleep(pause)


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower()


def _permanent_url(response: httpx.Response) -> str | None:
    """The URL the leading run of permanent redirects (301/308) ends at, if the chain starts with one."""
    hops = [*response.history, response]
    moved = None
    for hop, following in zip(hops, hops[1:], strict=False):
        if hop.status_code not in PERMANENT:
            break
        moved = str(following.request.url)
    return moved


def _read_capped(response: httpx.Response) -> bytes | None:
    chunks = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _read_file(url: str, path: Path, etag: str | None) -> Fetched:
    """A local feed file; its SHA-256 stands in for an ETag, so an unchanged file is not parsed again."""
    try:
        body = path.read_bytes()
    except OSError as exc:
        return Fetched(url, error=f"cannot read {path}: {exc.strerror or exc}")
    digest = '"sha256:' + hashlib.sha256(body).hexdigest() + '"'
    if etag == digest:
        return Fetched(url, etag=etag, not_modified=True)
    return Fetched(url, body=body, etag=digest)
