"""Signed tokens: a stable format (links already in inboxes must keep working) and no forgery."""

from __future__ import annotations

import pytest

from newsletter import urls
from newsletter.tokens import Signer

SECRET = "pinned-secret-for-tests-0123456789"


def test_token_format_is_stable_across_releases():
    # Values produced by the first implementation: mail already sent carries them.
    signer = Signer(SECRET)
    assert signer.sign("recipient", 42) == "NDI.Mso89k3-8HGJMxUS"
    assert signer.sign("link", 7) == "Nw.WSjmU3_34T-62XAd"
    assert signer.sign_timed("confirm", 5, 3, now=1_700_000_000) == "NTozOnQxNzAwMDAwMDAw.ogG5TSMFwRqmuj9X"
    assert signer.read("confirm", "NTozOnQxNzAwMDAwMDAw.ogG5TSMFwRqmuj9X", max_age=60, now=1_700_000_030) == [
        "5",
        "3",
    ]


@pytest.mark.parametrize(
    "token",
    [
        "NDI.Mso89k3-8HGJMxUT",  # one character of the MAC changed
        "NDM.Mso89k3-8HGJMxUS",  # payload changed (43), MAC kept
        "NDI.Mso89k3-8HGJMx",  # truncated
        "NDI",  # no MAC
        "NDI.Mso89k3-8HGJMxUS.x",  # extra part
        "!!!.Mso89k3-8HGJMxUS",  # not base64
        "",
    ],
)
def test_tampered_tokens_read_as_none(token):
    assert urls.read_recipient(Signer(SECRET), token) is None


def test_purposes_and_keys_do_not_mix():
    signer = Signer(SECRET)
    token = signer.sign("recipient", 42)
    assert urls.read_recipient(signer, token) == 42
    assert signer.read("link", token) is None  # a recipient token is no link token
    assert urls.read_recipient(Signer(SECRET + "x"), token) is None  # another site's key


def test_timed_tokens_expire():
    signer = Signer(SECRET)
    token = signer.sign_timed("confirm", 5, 3, now=1_000)
    assert signer.read("confirm", token, max_age=3600, now=1_000 + 3599) == ["5", "3"]
    assert signer.read("confirm", token, max_age=3600, now=1_000 + 3601) is None
    assert signer.read("confirm", signer.sign("confirm", 5, 3), max_age=3600) is None  # untimed
