"""The exception tree. Every message says what to fix: file, line, field, value.

NewsletterError
├── ConfigError          settings, newsletter.toml, lists/*.yaml, schedules.yaml
│   ├── SourceError      an error located at file:line:column
│   └── ScheduleError    schedules.yaml is invalid: every problem, each a SourceError
├── InputError           a CSV row, an address, a language given on the command line
│   └── Conflict         an edit based on a version someone else replaced (composed campaigns)
├── StoreError           the database (migrations, locks)
├── FeedError            fetching or parsing a feed
├── RenderError          Jinja, MJML, catalogs
├── SendError            a transport refused or failed
│   ├── TransportAuthError   credentials refused (401/403): the campaign pauses
│   ├── BatchRejected        the provider refused the batch as malformed: recorded, not retried
│   ├── TransientError       nothing was accepted and retries ran out: back to the queue
│   └── InDoubtError         the request may have been accepted: never resent blindly
├── Refused              a webhook post not processed; `status` is the HTTP answer
└── Unavailable          a stage a dashboard page needs could not answer
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


class ScheduleError(ConfigError):
    """schedules.yaml is invalid; `errors` lists every problem with its file:line:column."""

    def __init__(self, errors: list[SourceError]):
        self.errors = errors
        lines = "\n".join(f"  {e}" for e in errors)
        super().__init__(f"schedules.yaml has {len(errors)} error(s):\n{lines}")


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


class BatchRejected(SendError):
    """The provider refused the batch as malformed: record its text, do not retry blindly."""


class TransientError(SendError):
    """Nothing was accepted and retries ran out: the batch goes back to the queue."""


class InDoubtError(SendError):
    """The request may have been accepted: never resend blindly, wait for events or an operator."""

    def __init__(self, message: str, provider_id: str | None = None):
        super().__init__(message)
        self.provider_id = provider_id


class Refused(NewsletterError):
    """A webhook post that must not be processed; `status` is the HTTP answer."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Unavailable(NewsletterError):
    """A stage a dashboard page needs could not answer; the message says which and why."""


class Conflict(InputError):
    """An edit was based on a version someone else has replaced since; nothing was written."""
