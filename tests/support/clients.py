"""Email-client checks' tools: doiuse-email and axe-core (npm, pinned, in .cache/), SpamAssassin (apt).

`.ci/run` installs them; a test finding one missing installs the npm ones with npm, else fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOIUSE_EMAIL_VERSION = "0.4.1"
AXE_CORE_VERSION = "4.14.1"


def _npm_package(env: str, name: str, version: str, inside: str) -> Path:
    """`inside` of npm package `name`@`version` under .cache/NAME, or where `env` says."""
    found = Path(os.environ.get(env, str(REPO / ".cache" / name / "node_modules" / name / inside)))
    if not found.exists() and env not in os.environ and shutil.which("npm"):
        subprocess.run(
            [
                "npm",
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(REPO / ".cache" / name),
                f"{name}@{version}",
            ],
            check=True,
            capture_output=True,
        )
    if not found.exists():
        pytest.fail(f"{name} not found at {found}: set {env} or install it with npm")
    return found


def doiuse_email_dir() -> Path:
    """The doiuse-email package folder (NEWSLETTER_TEST_DOIUSE_EMAIL)."""
    return _npm_package("NEWSLETTER_TEST_DOIUSE_EMAIL", "doiuse-email", DOIUSE_EMAIL_VERSION, "")


def axe_script() -> Path:
    """axe-core's browser bundle (NEWSLETTER_TEST_AXE)."""
    return _npm_package("NEWSLETTER_TEST_AXE", "axe-core", AXE_CORE_VERSION, "axe.min.js")


def spamassassin() -> str:
    """The spamassassin command (NEWSLETTER_TEST_SPAMASSASSIN; Debian's package)."""
    found = os.environ.get("NEWSLETTER_TEST_SPAMASSASSIN") or shutil.which("spamassassin")
    if not found:
        pytest.fail(
            "spamassassin not found: apt-get install spamassassin, or set NEWSLETTER_TEST_SPAMASSASSIN"
        )
    return found
