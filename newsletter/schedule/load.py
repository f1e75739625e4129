"""Loading campaigns: once per operation, from every source of the site, and kept while valid.

Everything above the schedule stage loads here and passes the `Schedules` down; nothing below re-reads
a file. `LiveSchedules` is what long-running processes hold: an invalid edit is reported and the last
valid definition stays in force, so a send that falls due meanwhile goes out as it was planned.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from newsletter.campaigns import CampaignSource, Schedules, combine
from newsletter.errors import ConfigError
from newsletter.schedule.config import FileSource
from newsletter.schedule.stored import StoreSource

log = logging.getLogger("newsletter.schedule")


def site_sources(site: Any) -> list[CampaignSource]:
    """The site's campaign sources, in the order their ids are claimed."""
    return [FileSource(site), StoreSource(site)]


def load_schedules(site: Any) -> Schedules:
    """Every event and campaign of the site; a ConfigError lists what is wrong."""
    return combine([source.load() for source in site_sources(site)])


class LiveSchedules:
    """The site's schedules as last loaded without error, reloaded when a source changes."""

    def __init__(self, site: Any, sources: list[CampaignSource] | None = None):
        self.sources = sources if sources is not None else site_sources(site)
        self.last_error = ""  # the latest invalid edit, while the previous definition stays in force
        self._lock = threading.Lock()
        self._stamp = self._stamps()
        self._current = combine([s.load() for s in self.sources])  # invalid at start: raise

    def _stamps(self) -> tuple[object, ...]:
        return tuple(source.stamp() for source in self.sources)

    @property
    def current(self) -> Schedules:
        return self._current

    def __call__(self) -> Schedules:
        return self._current

    def changed(self) -> bool:
        return self._stamps() != self._stamp

    def refresh(self, force: bool = False) -> bool:
        """Reload if a source changed (or `force`); False when the new state is invalid (old one kept)."""
        with self._lock:
            stamp = self._stamps()
            if stamp == self._stamp and not force:
                return not self.last_error
            self._stamp = stamp
            try:
                loaded = combine([s.load() for s in self.sources])
            except ConfigError as exc:
                if str(exc) != self.last_error:
                    log.error("the schedule is invalid; the previous one stays in force:\n%s", exc)
                self.last_error = str(exc)
                return False
            self._current = loaded
            self.last_error = ""
            return True
