"""FakeOAuthServer over real HTTP with httpx: the grants, rotation, failures and slowness."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest

from cliproxy.testing import FakeOAuthServer, serve_on_loopback


@pytest.fixture
async def oauth() -> AsyncIterator[tuple[FakeOAuthServer, httpx.AsyncClient]]:
    fake = FakeOAuthServer(refresh_tokens=["rt-seed"], client_id="cli", expires_in=120)
    async with serve_on_loopback(fake) as url, httpx.AsyncClient(base_url=url) as http:
        yield fake, http


async def test_refresh_rotates_and_old_token_dies(oauth: tuple[FakeOAuthServer, httpx.AsyncClient]) -> None:
    fake, http = oauth
    form = {"grant_type": "refresh_token", "refresh_token": "rt-seed", "client_id": "cli"}
    r = await http.post("/token", data=form)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    tok = r.json()
    assert tok["token_type"] == "Bearer" and tok["expires_in"] == 120
    assert tok["refresh_token"] != "rt-seed" and fake.is_valid(tok["access_token"])
    again = await http.post("/token", data=form)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    r = await http.post("/token", data={**form, "refresh_token": tok["refresh_token"]})
    assert r.status_code == 200
    assert [i.grant_type for i in fake.issued] == ["refresh_token", "refresh_token"]
    assert fake.last.form == {**form, "refresh_token": tok["refresh_token"]}
    wrong_client = await http.post("/token", data={**form, "client_id": "other"})
    assert wrong_client.status_code == 401 and wrong_client.json()["error"] == "invalid_client"


async def test_authorization_code_with_pkce_and_json_body(oauth: tuple[FakeOAuthServer, httpx.AsyncClient]) -> None:
    fake, http = oauth
    fake.add_code("code-1", verifier="v" * 43)
    fake.add_code("code-2", verifier="v" * 43)
    fake.id_token_claims = {"https://api.openai.com/auth": {"chatgpt_account_id": "acct-1"}}
    body = {"grant_type": "authorization_code", "code": "code-1", "code_verifier": "v" * 43, "client_id": "cli"}
    r = await http.post("/v1/oauth/token", json=body)  # Anthropic's console posts JSON
    assert r.status_code == 200
    payload = r.json()["id_token"].split(".")[1]
    claims = msgspec.json.decode(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["https://api.openai.com/auth"]["chatgpt_account_id"] == "acct-1"
    assert claims["email"] == fake.email
    r = await http.post("/oauth/token", data={**body, "code": "code-2", "code_verifier": "wrong"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = await http.post("/token", data={**body, "code": "code-1"})  # codes are single use
    assert r.status_code == 400


async def test_device_code_flow(oauth: tuple[FakeOAuthServer, httpx.AsyncClient]) -> None:
    fake, http = oauth
    fake.device_pending = 2
    dev = (await http.post("/device/code", data={"client_id": "cli", "scope": "openid"})).json()
    assert dev["user_code"] and dev["verification_uri"].endswith("/device") and dev["interval"] == 0
    poll = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": dev["device_code"],
        "client_id": "cli",
    }
    errors = [(await http.post("/token", data=poll)).json().get("error") for _ in range(3)]
    assert errors == ["authorization_pending", "authorization_pending", None]
    r = await http.post("/token", data=poll)
    assert r.json()["error"] == "expired_token"


async def test_scripted_failures_slowness_and_userinfo(oauth: tuple[FakeOAuthServer, httpx.AsyncClient]) -> None:
    fake, http = oauth
    fake.fail_next(2, status=503, error="temporarily_unavailable")
    form = {"grant_type": "refresh_token", "refresh_token": "rt-seed", "client_id": "cli"}
    statuses = [(await http.post("/token", data=form)).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    fake.delay = 0.3
    started = time.monotonic()
    r = await http.post("/token", data={**form, "refresh_token": fake.issued[-1].refresh_token})
    assert r.status_code == 200 and time.monotonic() - started >= 0.3
    access = r.json()["access_token"]
    info = await http.get("/userinfo", headers={"authorization": f"Bearer {access}"})
    assert info.json()["email"] == "user@example.com"
    fake.expire(access)
    assert (await http.get("/userinfo", headers={"authorization": f"Bearer {access}"})).status_code == 401
    assert len(fake.token_requests) == 4
    r = await http.post("/token", data={"grant_type": "password", "client_id": "cli"})
    assert r.json()["error"] == "unsupported_grant_type"
