"""OAuth authorization servers on loopback speaking Slack's, Google's and Notion's wire formats.

Each fake is a real HTTP server (:class:`tests.fakes.loopback.LoopbackServer`) with:

* an authorize endpoint that "consents" at once and answers 302 to ``redirect_uri?code=…&state=…``
  (``deny_next = True`` answers ``error=access_denied`` instead), checking client id, redirect URI
  and, where the provider does PKCE, that a S256 ``code_challenge`` came;
* a token endpoint checking client authentication the provider's way, single-use codes bound to
  their redirect URI, the PKCE verifier, and refresh tokens (``kill_grant(rt)`` makes one dead);
* a revoke endpoint recording what was revoked (a revoked token no longer refreshes).

Formats: Slack answers HTTP 200 with ``{"ok": false, "error": …}`` on errors and nests the user
token in ``authed_user``; Google answers 400 ``{"error": "invalid_grant"}``, returns a refresh token
only on the first consent or with ``prompt=consent``, and unions scopes with
``include_granted_scopes``; Notion wants HTTP Basic and JSON bodies.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from tests.fakes.loopback import LoopbackServer, Request, Response

CLIENT_ID = "client-123"
CLIENT_SECRET = "client-secret-xyz"


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _basic(req: Request) -> tuple[str, str] | None:
    header = req.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        cid, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return None
    return cid, secret


@dataclass
class Code:
    redirect_uri: str
    challenge: str | None
    scopes: list[str]
    used: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class FakeOAuthServer:
    """Shared bookkeeping; subclasses add the provider's routes and formats."""

    name = "oauth"
    pkce_required = False

    def __init__(self, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.server = LoopbackServer(self.name)
        self.codes: dict[str, Code] = {}
        self.live_access: set[str] = set()
        self.live_refresh: set[str] = set()
        self.revoked: list[str] = []
        self.deny_next = False
        self.expires_in: int | None = 3600
        self._n = itertools.count(1)
        self.routes()

    # lifecycle
    def __enter__(self) -> FakeOAuthServer:
        self.server.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    def routes(self) -> None:
        raise NotImplementedError

    # helpers
    def kill_grant(self, refresh_token: str) -> None:
        """The user revoked access at the provider: this refresh token is dead from now on."""
        self.live_refresh.discard(refresh_token)

    def token(self, prefix: str) -> str:
        return f"{prefix}{next(self._n)}-{secrets.token_hex(6)}"

    def authorize(self, req: Request, *, scope_sep: str = " ", response_type_required: bool = True) -> Response:
        q = {k: v[0] for k, v in req.query.items()}
        redirect = q.get("redirect_uri", "")
        if q.get("client_id") != self.client_id or not redirect:
            return Response(400, "unknown client or missing redirect_uri")
        if response_type_required and q.get("response_type") != "code":
            return Response(400, "response_type must be code")
        challenge = q.get("code_challenge")
        if self.pkce_required and (not challenge or q.get("code_challenge_method") != "S256"):
            return Response(400, "PKCE S256 code_challenge required")
        sep = "&" if "?" in redirect else "?"
        if self.deny_next:
            self.deny_next = False
            params = {"error": "access_denied", "state": q.get("state", "")}
        else:
            code = self.token("code-")
            self.codes[code] = Code(redirect, challenge, [s for s in q.get("scope", "").split(scope_sep) if s],
                                    extra=q)
            params = {"code": code, "state": q.get("state", "")}
        return Response(302, b"", {"Location": redirect + sep + urlencode(params)})

    def redeem(self, code: str | None, redirect_uri: str | None, verifier: str | None) -> Code | str:
        """The code's grant, or the error code the provider would answer."""
        entry = self.codes.get(code or "")
        if entry is None:
            return "invalid_code"
        if entry.used:
            return "code_already_used"
        entry.used = True  # single use, even when the rest of the request is wrong
        if redirect_uri != entry.redirect_uri:
            return "bad_redirect_uri"
        if entry.challenge is not None and (not verifier or _s256(verifier) != entry.challenge):
            return "invalid_code_verifier"
        return entry

    def issue_pair(self, rotate: bool = True) -> tuple[str, str | None]:
        access = self.token("at-")
        self.live_access.add(access)
        refresh = self.token("rt-") if rotate else None
        if refresh:
            self.live_refresh.add(refresh)
        return access, refresh


class FakeSlackOAuth(FakeOAuthServer):
    """``/oauth/v2/authorize`` and ``/api/oauth.v2.access`` + ``/api/auth.revoke``; ``rotation`` = token rotation on."""

    name = "slack-oauth"
    pkce_required = True

    def __init__(self, *, rotation: bool = True, **kw: Any) -> None:
        self.rotation = rotation
        super().__init__(**kw)

    @property
    def authorize_url(self) -> str:
        return self.url + "/oauth/v2/authorize"

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def routes(self) -> None:
        s = self.server
        s.route("GET", r"^/oauth/v2/authorize$", lambda req, m: self.authorize(req, scope_sep=",",
                                                                              response_type_required=False))
        s.route("POST", r"^/api/oauth\.v2\.access$", lambda req, m: self._access(req))
        s.route("POST", r"^/api/auth\.revoke$", lambda req, m: self._revoke(req))

    def _fail(self, error: str) -> Response:
        return Response.json({"ok": False, "error": error})  # Slack: HTTP 200 with ok=false

    def _client_ok(self, req: Request) -> bool:
        basic = _basic(req)
        cid, secret = basic or (req.param("client_id"), req.param("client_secret"))
        return cid == self.client_id and secret == self.client_secret

    def _access(self, req: Request) -> Response:
        if not self._client_ok(req):
            return self._fail("bad_client_secret")
        if req.param("grant_type") == "refresh_token":
            rt = req.param("refresh_token") or ""
            if rt not in self.live_refresh:
                return self._fail("invalid_refresh_token")
            self.live_refresh.discard(rt)  # Slack refresh tokens rotate
            access, refresh = self.issue_pair()
            return Response.json({"ok": True, "access_token": access, "token_type": "bot", "refresh_token": refresh,
                                  "expires_in": self.expires_in, "team": {"id": "T1", "name": "Acme"}})
        entry = self.redeem(req.param("code"), req.param("redirect_uri"), req.param("code_verifier"))
        if isinstance(entry, str):
            return self._fail("invalid_code" if entry == "code_already_used" else entry)
        bot, bot_rt = self.issue_pair(self.rotation)
        user, user_rt = self.issue_pair(self.rotation)
        bot, user = "xoxb-" + bot, "xoxp-" + user
        self.live_access |= {bot, user}
        body: dict[str, Any] = {
            "ok": True, "app_id": "A0APP", "access_token": bot, "token_type": "bot",
            "scope": ",".join(entry.scopes), "bot_user_id": "U0BOT", "team": {"id": "T1", "name": "Acme"},
            "enterprise": None, "is_enterprise_install": False,
            "authed_user": {"id": "U0USER", "scope": entry.extra.get("user_scope", ""), "access_token": user,
                            "token_type": "user"},
        }
        if self.rotation:
            body.update(refresh_token=bot_rt, expires_in=self.expires_in)
            body["authed_user"].update(refresh_token=user_rt, expires_in=self.expires_in)
        return Response.json(body)

    def _revoke(self, req: Request) -> Response:
        token = req.param("token") or req.bearer or ""
        if token not in self.live_access:
            return self._fail("invalid_auth")
        self.live_access.discard(token)
        self.revoked.append(token)
        return Response.json({"ok": True, "revoked": True})


@dataclass
class _GoogleAccount:
    granted: set[str] = field(default_factory=set)
    refresh_token: str | None = None


class FakeGoogleOAuth(FakeOAuthServer):
    """``/o/oauth2/v2/auth``, ``/token`` (form; client in the body or Basic), ``/revoke``."""

    name = "google-oauth"
    pkce_required = True
    email = "ada@example.com"

    def __init__(self, **kw: Any) -> None:
        self.account = _GoogleAccount()
        super().__init__(**kw)

    @property
    def authorize_url(self) -> str:
        return self.url + "/o/oauth2/v2/auth"

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    @property
    def revoke_url(self) -> str:
        return self.url + "/revoke"

    def routes(self) -> None:
        s = self.server
        s.route("GET", r"^/o/oauth2/v2/auth$", lambda req, m: self.authorize(req))
        s.route("POST", r"^/token$", lambda req, m: self._token(req))
        s.route("POST", r"^/revoke$", lambda req, m: self._revoke(req))

    def _error(self, error: str, status: int = 400) -> Response:
        return Response.json({"error": error, "error_description": "Bad Request"}, status)

    def _id_token(self) -> str:
        def part(obj: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

        return ".".join([part({"alg": "RS256", "typ": "JWT"}), part({"email": self.email, "sub": "g-1"}), "sig"])

    def _token(self, req: Request) -> Response:
        basic = _basic(req)
        cid, secret = basic or (req.param("client_id"), req.param("client_secret"))
        if cid != self.client_id or secret != self.client_secret:
            return self._error("invalid_client", 401)
        grant = req.param("grant_type")
        if grant == "refresh_token":
            rt = req.param("refresh_token") or ""
            if rt not in self.live_refresh:
                return self._error("invalid_grant")
            access, _ = self.issue_pair(rotate=False)  # Google keeps the refresh token
            return Response.json({"access_token": access, "expires_in": self.expires_in, "token_type": "Bearer",
                                  "scope": " ".join(sorted(self.account.granted))})
        if grant != "authorization_code":
            return self._error("unsupported_grant_type")
        entry = self.redeem(req.param("code"), req.param("redirect_uri"), req.param("code_verifier"))
        if isinstance(entry, str):
            return self._error("invalid_grant")
        q = entry.extra
        if q.get("include_granted_scopes") == "true":
            self.account.granted |= set(entry.scopes)
        else:
            self.account.granted = set(entry.scopes)
        access, _ = self.issue_pair(rotate=False)
        body: dict[str, Any] = {"access_token": access, "expires_in": self.expires_in, "token_type": "Bearer",
                                "scope": " ".join(sorted(self.account.granted)), "id_token": self._id_token()}
        first = self.account.refresh_token is None or self.account.refresh_token not in self.live_refresh
        if q.get("access_type") == "offline" and (first or q.get("prompt") == "consent"):
            self.account.refresh_token = self.token("1//rt-")
            self.live_refresh.add(self.account.refresh_token)
            body["refresh_token"] = self.account.refresh_token
        return Response.json(body)

    def _revoke(self, req: Request) -> Response:
        token = req.param("token") or ""
        if token in self.live_refresh:
            self.live_refresh.discard(token)
            self.live_access.clear()  # revoking the refresh token revokes the grant
        elif token in self.live_access:
            self.live_access.discard(token)
        else:
            return Response.json({"error": "invalid_token", "error_description": "Token expired or revoked"}, 400)
        self.revoked.append(token)
        self.account.granted.clear()
        return Response.json({})


class FakeNotionOAuth(FakeOAuthServer):
    """``/v1/oauth/authorize``, ``/v1/oauth/token`` and ``/v1/oauth/revoke``: HTTP Basic + JSON bodies only."""

    name = "notion-oauth"
    pkce_required = False

    @property
    def base_url(self) -> str:
        return self.url

    def routes(self) -> None:
        s = self.server
        s.route("GET", r"^/v1/oauth/authorize$", lambda req, m: self.authorize(req))
        s.route("POST", r"^/v1/oauth/token$", lambda req, m: self._token(req))
        s.route("POST", r"^/v1/oauth/revoke$", lambda req, m: self._revoke(req))

    def _error(self, error: str, status: int = 400) -> Response:
        return Response.json({"error": error, "error_description": error.replace("_", " "),
                              "request_id": secrets.token_hex(8)}, status)

    def _checked_json(self, req: Request) -> dict[str, Any] | Response:
        if _basic(req) != (self.client_id, self.client_secret):
            return self._error("invalid_client", 401)
        if not re.search(r"application/json", req.headers.get("content-type", "")):
            return self._error("invalid_request")  # Notion takes JSON bodies
        try:
            data = req.json()
        except ValueError:
            return self._error("invalid_request")
        return data if isinstance(data, dict) else self._error("invalid_request")

    def _token(self, req: Request) -> Response:
        data = self._checked_json(req)
        if isinstance(data, Response):
            return data
        if data.get("grant_type") == "refresh_token":
            rt = str(data.get("refresh_token") or "")
            if rt not in self.live_refresh:
                return self._error("invalid_grant")
            self.live_refresh.discard(rt)
            access, refresh = self.issue_pair()
            return Response.json({"access_token": "ntn_" + access, "token_type": "bearer", "refresh_token": refresh,
                                  "bot_id": "bot-1", "workspace_id": "ws-1", "workspace_name": "Ada's Notion"})
        if data.get("grant_type") != "authorization_code":
            return self._error("unsupported_grant_type")
        entry = self.redeem(data.get("code"), data.get("redirect_uri"), None)
        if isinstance(entry, str):
            return self._error("invalid_grant")
        access, refresh = self.issue_pair()
        return Response.json({
            "access_token": "ntn_" + access, "token_type": "bearer", "refresh_token": refresh, "bot_id": "bot-1",
            "workspace_id": "ws-1", "workspace_name": "Ada's Notion", "workspace_icon": None,
            "owner": {"type": "user", "user": {"object": "user", "id": "nu-1"}}, "duplicated_template_id": None,
            "request_id": secrets.token_hex(8),
        })

    def _revoke(self, req: Request) -> Response:
        data = self._checked_json(req)
        if isinstance(data, Response):
            return data
        token = str(data.get("token") or "")
        if not token.startswith("ntn_") or token[4:] not in self.live_access:
            return Response.json({"object": "error", "status": 401, "code": "unauthorized",
                                  "message": "API token is invalid."}, 401)
        self.live_access.discard(token[4:])
        self.revoked.append(token)
        return Response.json({"request_id": secrets.token_hex(8)})
