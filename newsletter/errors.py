"""The exception tree. Every message says what to fix: file, line, field, value.

NewsletterError
├── ConfigError          settings, newsletter.toml, lists/*.yaml, schedules.yaml
│   └── SourceError      an error located at file:line:column
├── InputError           a CSV row, an address, a language given on the command line
├── StoreError           the database (migrations, locks)
├── FeedError            fetching or parsing a feed
├── RenderError          Jinja, MJML, catalogs
└── SendError            a transport refused or failed
    └── TransportAuthError   credentials refused (401/403): the campaign pauses
"""

from __future__ import annotations


class NewsletterError(Exception):
    """Base of every error the tool reports to a user."""


class ConfigError(NewsletterError):
    """A setting or a site file is wrong."""


class SourceError(ConfigError):
    """An error at a place in a file."""

    def __init__(self, path: object, line: int | None, column: int | None, message: str):
        self.path = str(path)
        self.line = line
        self.column = column
        self.message = message
        where = self.path
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {message}")


class InputError(NewsletterError):
    """Bad input given to a command."""


class StoreError(NewsletterError):
    """The store cannot do what was asked."""


class FeedError(NewsletterError):
    """A feed cannot be fetched or parsed."""


class RenderError(NewsletterError):
    """A template or catalog cannot be rendered."""


class SendError(NewsletterError):
    """A transport failed to hand over a message."""


class TransportAuthError(SendError):
    """The provider refused our credentials: pause, do not retry."""
