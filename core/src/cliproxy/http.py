"""Pooled outbound HTTP clients, one per outbound proxy, shared by every executor.

Creating an ``httpx.AsyncClient`` (pool, SSL context) costs 100+ ms, so clients are long-lived and keyed by the
proxy they go through; a credential's own ``proxy-url`` wins over the global ``proxy-url``.

Direct (non-proxied) clients send through :class:`cliproxy.transport.FastTransport`, which costs a fraction of
httpx's default transport per request; proxied ones keep httpx's transport, which speaks HTTP/HTTPS/SOCKS
proxies. ``CLIPROXY_HTTP_TRANSPORT=httpcore`` puts every client back on httpx's transport.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import urllib.request
from typing import Any

import httpx

from .transport import FastTransport

__all__ = ["HttpClients"]

_TIMEOUT = httpx.Timeout(connect=15.0, read=600.0, write=60.0, pool=30.0)
_LIMITS = httpx.Limits(max_connections=1024, max_keepalive_connections=128, keepalive_expiry=60.0)


class _NoCookies(httpx.Cookies):
    """A cookie store that keeps nothing.

    One client serves every credential, so a cookie set for one account's request must not ride along on
    another's (the CLI clients we stand in for keep no cookies either); and httpx's per-response extraction
    (urllib request/response adapters plus a locked jar walk) is a measurable cost per request.
    """

    def __init__(self) -> None:
        super().__init__()

    def extract_cookies(self, response: httpx.Response) -> None:
        pass

    def set_cookie_header(self, request: httpx.Request) -> None:
        pass


class _Client(httpx.AsyncClient):
    """``httpx.AsyncClient`` without a cookie jar (see :class:`_NoCookies`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:  # the jar stays empty whatever is assigned
        self._cookies = _NoCookies()


def _env_proxies() -> bool:
    """Whether ``HTTP(S)_PROXY``/``ALL_PROXY`` are set: a ``trust_env`` client then mounts httpx transports."""
    return any(k != "no" for k in urllib.request.getproxies())


class HttpClients:
    def __init__(
        self,
        default_proxy: str | None = None,
        *,
        timeout: httpx.Timeout = _TIMEOUT,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        self.default_proxy = default_proxy or None
        self._timeout = timeout
        self._extensions = {"timeout": timeout.as_dict()}
        self._verify = verify  # built on first use: ssl.create_default_context() is a big share of start-up
        self._clients: dict[str | None, httpx.AsyncClient] = {}
        self._closed: list[httpx.AsyncClient] = []

    def ssl_context(self) -> ssl.SSLContext:
        """The OS trust store (and SSL_CERT_FILE), so corporate CAs and TLS-inspecting proxies work."""
        if self._verify is None:
            self._verify = ssl.create_default_context()
        return self._verify

    def client(self, proxy_url: str | None = None) -> httpx.AsyncClient:
        """The client for ``proxy_url`` (or the global proxy); created on first use, then reused."""
        key = proxy_url or self.default_proxy
        c = self._clients.get(key)
        if c is None:
            c = self._clients[key] = self._new_client(key)
        return c

    def _new_client(self, key: str | None) -> httpx.AsyncClient:
        common: dict[str, Any] = {"timeout": self._timeout, "follow_redirects": False, "trust_env": key is None}
        fast = os.environ.get("CLIPROXY_HTTP_TRANSPORT", "").strip().lower() != "httpcore"
        if key is None and fast:
            # httpx only builds transports (and so only needs a context) for proxies found in the environment.
            verify: ssl.SSLContext | bool = self.ssl_context() if _env_proxies() else True
            return _Client(transport=FastTransport(self.ssl_context), verify=verify, **common)
        # An https:// proxy gets its own TLS handshake: it must trust the same CAs as upstream calls.
        proxy = None
        if key:
            ctx = self.ssl_context()
            proxy = httpx.Proxy(key, ssl_context=ctx) if key.startswith("https:") else httpx.Proxy(key)
        return _Client(proxy=proxy, limits=_LIMITS, verify=self.ssl_context(), **common)

    async def send(
        self,
        url: httpx.URL,
        *,
        content: bytes,
        headers: dict[str, str],
        proxy_url: str | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """POST straight to the client's transport for ``url``.

        ``AsyncClient.send`` runs auth, redirect, cookie and event-hook machinery we never use, about 0.15 ms
        per call; the transport (and so pooling, proxies and TLS) is the client's own. With ``stream`` the
        caller reads and closes the response; otherwise the body is read here.
        """
        client = self.client(proxy_url)
        if "accept-encoding" not in headers and "Accept-Encoding" not in headers:
            headers = {**headers, "Accept-Encoding": "gzip, deflate"}
        request = httpx.Request("POST", url, content=content, headers=headers, extensions=self._extensions)
        transport = client._transport_for_url(url)
        response = await transport.handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    def set_default_proxy(self, proxy_url: str | None) -> None:
        """Config reload: new requests use the new global proxy; in-flight ones finish on the old client."""
        proxy_url = proxy_url or None
        if proxy_url != self.default_proxy:
            self.default_proxy = proxy_url

    async def aclose(self) -> None:
        clients = list(self._clients.values()) + self._closed
        self._clients.clear()
        self._closed.clear()
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
