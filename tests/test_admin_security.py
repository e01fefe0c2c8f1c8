"""Every admin endpoint (found by walking the router, so new ones are covered automatically)
refuses an unauthenticated request and a cross-site or token-less change; login is throttled,
redirects only within the site, and sessions end when the password changes; a lost generated
password is reset from the command line."""

from __future__ import annotations

import re

import falcon.inspect
import httpx
import pytest

from app.admin import create_admin_app
from app.admin.auth import Sessions, hash_password, safe_next, verify_password
from app.main import create_app
from app.settings import Settings
from tests.conftest import ADMIN_PASSWORD
from tests.test_admin_settings import own_db  # noqa: F401  (a fixture: a fresh database)
from tests.test_cli import cli

PUBLIC = {"/login", "/api/login"}


def admin_routes() -> list[tuple[str, str]]:
    """(method, concrete path) for every responder of the admin app."""
    app = create_admin_app(create_app(Settings(admin_password="x"), migrate=False))
    found = []
    for route in falcon.inspect.inspect_routes(app):
        path = re.sub(r"\{[^}]+\}", "placeholder", route.path)
        for method in route.methods:
            if method.internal or method.method in ("OPTIONS", "HEAD"):
                continue
            found.append((method.method, path))
    return sorted(set(found))


ROUTES = admin_routes()
CHANGING = [(m, p) for m, p in ROUTES if m not in ("GET",)]


def test_the_router_walk_finds_the_admin_endpoints() -> None:
    assert ("GET", "/") in ROUTES and ("POST", "/logout") in ROUTES and ("POST", "/api/login") in ROUTES


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if r[1] not in PUBLIC])
def test_unauthenticated_requests_are_refused(admin, method: str, path: str) -> None:
    with httpx.Client(base_url=admin.url, headers={"Origin": admin.url}) as anonymous:
        reply = anonymous.request(method, path, json={})
    if path.startswith("/api/"):
        assert reply.status_code == 401, (method, path, reply.status_code)
        assert reply.json()["error"] == "log in first"
    elif method == "GET":
        assert reply.status_code == 303 and reply.headers["location"].startswith("/login?next=")
    else:
        assert reply.status_code in (401, 303), (method, path, reply.status_code)


@pytest.mark.parametrize(("method", "path"), CHANGING)
def test_cross_site_changes_are_refused(admin, method: str, path: str) -> None:
    reply = admin.client.request(method, path, json={}, headers={"Origin": "https://evil.example"})
    assert reply.status_code == 403, (method, path, reply.status_code)


@pytest.mark.parametrize(("method", "path"), [r for r in CHANGING if r[1] not in PUBLIC])
def test_changes_without_the_csrf_token_are_refused(admin, method: str, path: str) -> None:
    headers = {k: v for k, v in admin.client.headers.items() if k.lower() != "x-csrf-token"}
    with httpx.Client(base_url=admin.url, headers=headers, cookies=admin.client.cookies) as no_token:
        reply = no_token.request(method, path, json={})
    assert reply.status_code == 403, (method, path, reply.status_code)
    assert "CSRF" in reply.text


def test_login_form_sets_a_strict_http_only_cookie_and_redirects_only_within_the_site(make_admin) -> None:
    admin = make_admin()
    with httpx.Client(base_url=admin.url, headers={"Origin": admin.url}) as browser:
        reply = browser.post("/login", data={"password": ADMIN_PASSWORD, "next": "https://evil.example/x"})
        assert reply.status_code == 303 and reply.headers["location"] == "/"
        cookie = reply.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=" in cookie
        assert "Secure" not in cookie  # plain http on loopback; set when served over TLS
        again = browser.post("/login", data={"password": ADMIN_PASSWORD, "next": "/usage?tag=a"})
        assert again.headers["location"] == "/usage?tag=a"
        assert browser.get("/").status_code == 200


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example", "/\\evil.example", "javascript:x", ""])
def test_no_open_redirect(target: str) -> None:
    assert safe_next(target) == "/"


def test_login_is_throttled(make_admin) -> None:
    admin = make_admin()
    with httpx.Client(base_url=admin.url) as client:
        codes = [client.post("/api/login", json={"password": f"wrong {i}"}).status_code for i in range(6)]
        assert codes == [401] * 5 + [429]
        blocked = client.post("/api/login", json={"password": ADMIN_PASSWORD})
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0


def test_security_headers(admin) -> None:
    reply = admin.client.get("/")
    assert "default-src 'self'" in reply.headers["content-security-policy"]
    assert reply.headers["x-frame-options"] == "DENY"


def test_password_hash_is_slow_salted_and_checked() -> None:
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first != second and first.startswith("scrypt$32768$")
    assert verify_password("s3cret", first) and not verify_password("s3creT", first)
    assert not verify_password("s3cret", "plain-text")


def test_sessions_expire_and_end_with_the_password() -> None:
    sessions = Sessions("key", hash_password("a"), lifetime_seconds=60)
    cookie = sessions.issue()
    assert sessions.check(cookie) is not None
    assert Sessions("key", hash_password("b"), 60).check(cookie) is None  # password changed
    assert Sessions("other key", sessions.fingerprint, 60).check(cookie) is None
    assert Sessions("key", hash_password("a"), lifetime_seconds=-1).check(Sessions("key", "h", -1).issue()) is None
    tampered = cookie.replace(cookie.split(".")[0], str(int(cookie.split(".")[0]) + 9999))
    assert sessions.check(tampered) is None


@pytest.mark.parametrize("session_secret", ["", "a secret both instances are given"])
def test_a_session_holds_on_every_instance_and_across_restarts(make_admin, session_secret: str) -> None:
    """With ADMIN_PASSWORD set, each start hashes it with a new salt: the cookie must not depend on that hash."""
    first = make_admin(session_secret=session_secret)
    second = make_admin(session_secret=session_secret)  # another instance, or the first one restarted
    cookies = dict(first.client.cookies)
    with httpx.Client(base_url=second.url, headers={"Origin": second.url}, cookies=cookies) as elsewhere:
        assert elsewhere.get("/api/settings").status_code == 200
        changed = make_admin(session_secret=session_secret, admin_password="another password", login=False)
        assert elsewhere.get(changed.url + "/api/settings").status_code == 401  # a new password ends it


def test_generated_password_is_printed_once_and_kept_hashed(make_admin, caplog) -> None:
    caplog.set_level("WARNING", logger="llm_relay.admin")
    admin = make_admin(admin_password="", login=False)
    lines = [r.getMessage() for r in caplog.records if "generated admin password" in r.getMessage()]
    from app.stores.models import RelaySetting

    async def stored():
        with admin.relay.app.services.database.context:
            return await RelaySetting.read("admin_password_hash")

    hashed = admin.relay.server.call(stored)
    assert hashed.startswith("scrypt$")
    if lines:  # the first relay on this database generated it; a later one reuses the hash
        password = lines[0].rsplit(": ", 1)[1]
        assert verify_password(password, hashed) and password not in hashed


def test_a_lost_generated_password_is_reset_from_the_command_line(own_db, make_admin) -> None:  # noqa: F811
    first = make_admin(database_url=own_db, admin_password="", login=False)  # generates one, printed once
    reset = cli("admin", "reset-password", env={"DATABASE_URL": own_db, "ADMIN_PASSWORD": ""})
    assert reset.returncode == 0, reset.stderr
    password = reset.stdout.strip()
    assert len(password) >= 20 and "restart the relay" in reset.stderr
    assert first.client.post("/api/login", json={"password": password}).status_code == 401  # not before a restart
    restarted = make_admin(database_url=own_db, admin_password="", login=False)
    assert restarted.client.post("/api/login", json={"password": password}).status_code == 200
    from_env = cli("admin", "reset-password", env={"DATABASE_URL": own_db, "ADMIN_PASSWORD": "set elsewhere"})
    assert from_env.returncode == 2 and "ADMIN_PASSWORD sets the admin password" in from_env.stderr
