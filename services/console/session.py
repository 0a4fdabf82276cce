"""Who is signed in, kept in the signed, HttpOnly session cookie (Starlette's SessionMiddleware,
itsdangerous), and the CSRF token every form carries."""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import Request

from shared.auth import scopes_for

# The dev identity provider's users: one per role (tokens from `shared.auth.issue_token`).
# Their subjects match the owners and assignees of `make demo`'s data set (agent-1 ... agent-8).
DEV_USERS: tuple[tuple[str, str, str], ...] = (
    ("manager", "manager-1", "Wang Fang"),
    ("agent", "agent-1", "Li Wei"),
    ("analyst", "analyst-1", "Zhao Min"),
    ("admin", "admin", "Admin"),
)


@dataclass(frozen=True)
class User:
    """The signed-in user and the bearer token the console calls the APIs with."""

    subject: str
    name: str
    role: str | None
    scope: str  # explicit scopes of the token, space-separated
    token: str
    expires_at: float
    provider: str  # "dev" or "oidc"

    @property
    def scopes(self) -> frozenset[str]:
        return scopes_for({"role": self.role, "scope": self.scope})

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def home(self) -> str:
        """Where this user starts: managers and analysts on the dashboard, agents at work."""
        if self.can("analytics:read") and (self.can("agents:write") or not self.can("pii:read")):
            return "/dashboard"
        if self.can("followups:read"):
            return "/workspace"
        return "/customers"


class CsrfFailed(Exception):
    """A form post without this session's CSRF token."""


def current_user(request: Request) -> User | None:
    data = request.session.get("user")
    if not isinstance(data, dict):
        return None
    try:
        user = User(**data)
    except TypeError:
        return None
    if user.expires_at <= time.time():
        return None
    return user


def sign_in(request: Request, user: User) -> None:
    """Start a fresh session for `user` (a new CSRF token: nothing from before carries over)."""
    lang = request.session.get("lang")
    request.session.clear()
    if lang:
        request.session["lang"] = lang
    request.session["user"] = asdict(user)
    request.session["csrf"] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    lang = request.session.get("lang")
    request.session.clear()
    if lang:
        request.session["lang"] = lang


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf(request: Request, form: Any) -> None:
    """The posted `csrf_token` must equal the session's (synchroniser token pattern)."""
    expected = request.session.get("csrf")
    sent = form.get("csrf_token")
    if not isinstance(expected, str) or not isinstance(sent, str):
        raise CsrfFailed("no CSRF token")
    if not hmac.compare_digest(expected.encode(), sent.encode()):
        raise CsrfFailed("wrong CSRF token")


def flash(request: Request, key: str, kind: str = "info", detail: str = "") -> None:
    """A message (an i18n key, and what the API said) shown once on the next page."""
    request.session["flash"] = {"key": key, "kind": kind, "detail": detail[:300]}


def take_flash(request: Request) -> dict[str, str] | None:
    value = request.session.pop("flash", None)
    return value if isinstance(value, dict) else None
