"""Pooled outbound HTTP clients, one per outbound proxy, shared by every executor.

Creating an ``httpx.AsyncClient`` (pool, SSL context) costs 100+ ms, so clients are long-lived and keyed by the
proxy they go through; a credential's own ``proxy-url`` wins over the global ``proxy-url``.
"""

from __future__ import annotations

import asyncio
import ssl

import httpx

__all__ = ["HttpClients"]

_TIMEOUT = httpx.Timeout(connect=15.0, read=600.0, write=60.0, pool=30.0)
_LIMITS = httpx.Limits(max_connections=1024, max_keepalive_connections=128, keepalive_expiry=60.0)


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
        # The OS trust store (and SSL_CERT_FILE), so corporate CAs and TLS-inspecting proxies work.
        self._verify = verify or ssl.create_default_context()
        self._clients: dict[str | None, httpx.AsyncClient] = {}
        self._closed: list[httpx.AsyncClient] = []

    def client(self, proxy_url: str | None = None) -> httpx.AsyncClient:
        """The client for ``proxy_url`` (or the global proxy); created on first use, then reused."""
        key = proxy_url or self.default_proxy
        c = self._clients.get(key)
        if c is None:
            # An https:// proxy gets its own TLS handshake: it must trust the same CAs as upstream calls.
            proxy = None
            if key:
                proxy = httpx.Proxy(key, ssl_context=self._verify) if key.startswith("https:") else httpx.Proxy(key)
            c = httpx.AsyncClient(
                proxy=proxy,
                timeout=self._timeout,
                limits=_LIMITS,
                follow_redirects=False,
                verify=self._verify,
                trust_env=key is None,
            )
            self._clients[key] = c
        return c

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
