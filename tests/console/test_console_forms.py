"""The console's session and forms over HTTP: signed HttpOnly cookies, CSRF on every post, the
language choice, and a session whose token the APIs refuse."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from itsdangerous import TimestampSigner

from services.console.config import Settings as ConsoleSettings
from shared.auth import issue_token
from shared.settings import ServiceSettings
from tests.console.stack import Stack

pytestmark = pytest.mark.timeout(600)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def signed_in(console: str, subject: str) -> tuple[httpx.AsyncClient, str]:
    """A client signed in as the dev user `subject`, and its session's CSRF token."""
    client = httpx.AsyncClient(base_url=console, headers={"Accept-Language": "en"})
    login = await client.get("/login")
    response = await client.post(
        "/login/dev", data={"csrf_token": CSRF.search(login.text)[1], "subject": subject}
    )
    assert response.status_code == 303, response.text
    page = await client.get(response.headers["location"])
    return client, CSRF.search(page.text)[1]


async def overdue_followup(stack: Stack, assignee: str) -> str:
    customer = await stack.clients["profiles"].post(
        "/customers",
        json={"kind": "organisation", "display_name": f"Forms Test {uuid.uuid4().hex[:8]}"},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert customer.status_code == 201, customer.text
    followup = await stack.clients["interactions"].post(
        "/followups",
        json={
            "customer_id": customer.json()["id"],
            "kind": "care",
            "due_at": (datetime.now(UTC) - timedelta(hours=3)).isoformat(),
            "assignee_id": assignee,
        },
    )
    assert followup.status_code == 201, followup.text
    return str(followup.json()["id"])


async def test_a_form_post_without_this_sessions_csrf_token_is_refused_and_changes_nothing(
    stack: Stack,
) -> None:
    followup_id = await overdue_followup(stack, "agent-1")
    agent, token = await signed_in(stack.console, "agent-1")
    other, other_token = await signed_in(stack.console, "agent-1")
    action = f"/actions/followups/{followup_id}/complete"
    try:
        for data in ({}, {"csrf_token": ""}, {"csrf_token": other_token}):
            refused = await agent.post(action, data=data)
            assert refused.status_code == 403, data
            assert "did not come from this console" in refused.text
        stored = await stack.clients["interactions"].get(f"/followups/{followup_id}")
        assert stored.json()["status"] == "open"

        done = await agent.post(action, data={"csrf_token": token})
        assert done.status_code == 303
        stored = await stack.clients["interactions"].get(f"/followups/{followup_id}")
        assert stored.json()["status"] == "done"
        # Signing out is a form too: without the token the session stays.
        assert (await agent.post("/logout")).status_code == 403
        assert (await agent.get("/workspace")).status_code == 200
    finally:
        await agent.aclose()
        await other.aclose()


async def test_the_session_cookie_is_signed_http_only_and_a_forged_one_signs_nobody_in(
    stack: Stack,
) -> None:
    async with httpx.AsyncClient(base_url=stack.console) as client:
        login = await client.get("/login")
        response = await client.post(
            "/login/dev",
            data={"csrf_token": CSRF.search(login.text)[1], "subject": "manager-1"},
        )
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("kehu_console=")
        assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()

        # The same session content signed with another key is not a session.
        forged = _session_cookie("not-the-console-secret", {"user": client.cookies["kehu_console"]})
        async with httpx.AsyncClient(base_url=stack.console) as intruder:
            intruder.cookies.set("kehu_console", forged)
            answer = await intruder.get("/dashboard")
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


async def test_a_session_whose_token_the_apis_refuse_ends_with_a_message(stack: Stack) -> None:
    # A session the console signed, holding a token no API accepts (wrong signing secret).
    bad_token = issue_token(ServiceSettings(KEHU_JWT_SECRET="x" * 40), "agent", subject="agent-1")
    user = {
        "subject": "agent-1",
        "name": "Li Wei",
        "role": "agent",
        "scope": "",
        "token": bad_token,
        "expires_at": time.time() + 3600,
        "provider": "dev",
    }
    secret = ConsoleSettings().session_signing_secret
    async with httpx.AsyncClient(
        base_url=stack.console, headers={"Accept-Language": "en"}
    ) as client:
        client.cookies.set("kehu_console", _session_cookie(secret, {"user": user, "csrf": "c"}))
        answer = await client.get("/workspace")
        assert answer.status_code == 303 and answer.headers["location"] == "/login"
        login = await client.get("/login")
        assert "Your session has expired" in login.text
        assert (await client.get("/workspace")).headers["location"].startswith("/login")


async def test_the_language_follows_the_browser_until_the_user_switches(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.console) as client:
        chinese = await client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
        assert '<html lang="zh-CN">' in chinese.text and "登录客户控制台" in chinese.text
        english = await client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.8"})
        assert '<html lang="en">' in english.text and "Sign in to the Kehu console" in english.text

        switched = await client.get("/lang/en", params={"next": "/login"})
        assert switched.headers["location"] == "/login"
        after = await client.get("/login", headers={"Accept-Language": "zh-CN"})
        assert "Sign in to the Kehu console" in after.text

        # The switch only ever sends the browser back into the console.
        for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
            away = await client.get("/lang/zh-CN", params={"next": target})
            assert away.headers["location"] == "/", target


def _session_cookie(secret: str, data: dict[str, object]) -> str:
    """A cookie as Starlette's SessionMiddleware writes it: signed base64 JSON."""
    payload = base64.b64encode(json.dumps(data).encode())
    return TimestampSigner(secret).sign(payload).decode()


async def test_the_customer_page_shows_the_members_level_and_points_from_loyalty(
    stack: Stack,
) -> None:
    member, stranger = [
        await stack.clients["profiles"].post(
            "/customers",
            json={"kind": "person", "display_name": f"Loyalty Panel {uuid.uuid4().hex[:8]}"},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        for _ in range(2)
    ]
    assert member.status_code == stranger.status_code == 201
    member_id, stranger_id = member.json()["id"], stranger.json()["id"]
    loyalty = stack.clients["loyalty"]
    enrolled = await loyalty.post("/members", json={"customer_id": member_id})
    assert enrolled.status_code in (200, 201), enrolled.text
    credited = await loyalty.post(
        f"/members/{member_id}/adjustments", json={"points": 250, "reason": "goodwill"}
    )
    assert credited.status_code == 201, credited.text
    figures = credited.json()
    assert figures["balance"]["available"] == 250

    client, _ = await signed_in(stack.console, "agent-1")
    try:
        page = await client.get(f"/customers/{member_id}")
        assert page.status_code == 200, page.text
        panel = page.text.split('data-panel="loyalty"', 1)[1].split("</section>", 1)[0]
        assert "data-state" not in panel
        assert re.search(r'data-testid="points-available">250<', panel), panel
        level = figures["level"] or "-"
        assert re.search(rf'data-testid="loyalty-level">{re.escape(level)}\b', panel), panel

        # Not a member: loyalty answers 404 and the panel says so.
        page = await client.get(f"/customers/{stranger_id}")
        assert page.status_code == 200, page.text
        panel = page.text.split('data-panel="loyalty"', 1)[1].split("</section>", 1)[0]
        assert 'data-state="missing"' in panel
        assert "Not a loyalty member" in panel or "尚未加入会员" in panel, panel
        assert "points-available" not in panel
    finally:
        await client.aclose()
