"""A scripted user for login tests: follows an authorize URL to the consent redirect and the local callback."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

__all__ = ["follow_login_url", "tamper_state"]


def tamper_state(url: str) -> str:
    """The same callback URL with a forged ``state`` (what a CSRF attempt would deliver)."""
    parts = urlsplit(url)
    query = [(k, "forged-" + v if k == "state" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def follow_login_url(url: str, *, forge_state: bool = False, timeout: float = 30.0) -> httpx.Response:
    """GET the authorize URL (the fake consents at once and redirects), then GET the callback it names.

    Returns the callback server's answer, which arrives once the code was exchanged. Synchronous, so it works
    from a test thread while ``cliproxy login`` runs as a subprocess.
    """
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        consent = client.get(url)
        if consent.status_code != 302:
            return consent
        callback = consent.headers["location"]
        return client.get(tamper_state(callback) if forge_state else callback)
