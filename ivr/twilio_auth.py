"""Who may open a Twilio stream or call the TwiML webhook of a tenant: X-Twilio-Signature with that tenant's token.

Twilio signs every request (the WebSocket handshake of a Media Stream and the TwiML webhook) with the account's
auth token: ``X-Twilio-Signature`` = base64 HMAC-SHA1 of the public URL followed by the sorted POST parameters
(https://www.twilio.com/docs/usage/security#validating-requests). A tenant's tokens are the ones stored, encrypted,
on its unrevoked API keys (``voiceauth keys create --role telephony --twilio-auth-token ...``), plus
``Settings.twilio_auth_token`` for the tenant ``Settings.ivr_tenant`` (the unscoped alias).

The rules (:meth:`TwilioGate.check`):

- unknown tenant: refused;
- a tenant with a token: the signature must match one of them, else refused;
- a tenant without a token: refused, except a tenant named in ``Settings.twilio_open_tenants`` (the embedded
  demo: ``voiceauth serve`` on SQLite opens its demo tenant and says so once at start).

Pure apart from the credential lookup, which is injected (:class:`StoreTwilioTokens` reads the store).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from voiceauth.config import Settings
from voiceauth.errors import ConfigError, NotFound
from voiceauth.store.keys import twilio_tokens
from voiceauth.store.repo import Store

__all__ = [
    "StaticTwilioTokens",
    "StoreTwilioTokens",
    "TwilioGate",
    "TwilioTokens",
    "open_tenants_warning",
    "twilio_signature",
]

log = logging.getLogger(__name__)


def twilio_signature(token: str, url: str, params: Mapping[str, str] | None = None) -> str:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by the sorted POST parameters."""
    data = url + "".join(k + v for k, v in sorted((params or {}).items()))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


class TwilioTokens(Protocol):
    def tokens(self, tenant: str) -> list[str] | None:
        """The tenant's Twilio auth tokens ([] when it has none), or None when there is no such tenant."""
        ...


class StoreTwilioTokens:
    """Tokens stored (encrypted) on the tenant's unrevoked API keys."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def tokens(self, tenant: str) -> list[str] | None:
        with self.store.transaction() as tx:
            return twilio_tokens(tx, tenant)


class StaticTwilioTokens:
    """A fixed table tenant -> tokens (tests, a deployment configured by environment)."""

    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        self.table = {t: list(v) for t, v in table.items()}

    def tokens(self, tenant: str) -> list[str] | None:
        return self.table.get(tenant)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str  # why refused, or how admitted ("signed" | "open")
    tenant_known: bool


class TwilioGate:
    """Admits or refuses one Twilio request for a tenant."""

    def __init__(self, settings: Settings, tokens: TwilioTokens) -> None:
        open_tenants = frozenset(settings.twilio_open_tenants)
        if open_tenants and settings.database_url:
            raise ConfigError(
                f"twilio_open_tenants {sorted(open_tenants)} admits unsigned Twilio streams, which only the embedded "
                "demo may do; with a database_url give each tenant its Twilio auth token "
                "(voiceauth keys create --tenant T --role telephony --twilio-auth-token ...) and unset it"
            )
        self.tokens = tokens
        self.open_tenants = open_tenants
        self.alias_tenant = settings.ivr_tenant
        self.env_token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
        self.public_url = settings.ivr_public_url

    def urls(self, seen_url: str, path: str, query: str) -> list[str]:
        """The URLs Twilio may have signed: the one this request reached and, behind a proxy, the public one."""
        urls = [seen_url]
        if self.public_url:
            base = self.public_url.rstrip("/")
            for b in {base, base.replace("https://", "wss://"), base.replace("http://", "ws://")}:
                urls.append(b + path + (f"?{query}" if query else ""))
        return urls

    def check(
        self, tenant: str, signature: str, urls: Sequence[str], params: Mapping[str, str] | None = None
    ) -> Verdict:
        try:
            found = self.tokens.tokens(tenant)
        except NotFound:
            found = None
        tokens = list(found or [])
        if self.env_token and tenant == self.alias_tenant:
            tokens.append(self.env_token)
        known = found is not None or bool(tokens)
        if tokens:
            expected = [twilio_signature(t, u, params) for t in tokens for u in urls]
            if signature and any(hmac.compare_digest(signature, e) for e in expected):
                return Verdict(True, "signed", True)
            why = "X-Twilio-Signature is missing" if not signature else "X-Twilio-Signature does not match"
            return Verdict(False, f"{why} (tenant {tenant!r} has a Twilio auth token)", True)
        if tenant in self.open_tenants:
            return Verdict(True, "open", known)
        if not known:
            return Verdict(False, f"no tenant {tenant!r}", False)
        return Verdict(
            False,
            f"tenant {tenant!r} has no Twilio auth token configured; add one with voiceauth keys create --tenant "
            f"{tenant} --role telephony --twilio-auth-token ... (or POST /v1/keys)",
            True,
        )


def open_tenants_warning(settings: Settings) -> str | None:
    """The one warning the embedded demo gives at start when tenants accept unsigned Twilio traffic."""
    if not settings.twilio_open_tenants:
        return None
    names = ", ".join(repr(t) for t in settings.twilio_open_tenants)
    paths = ", ".join(f"/v1/streams/twilio/{t} and /v1/twiml/{t}" for t in settings.twilio_open_tenants)
    alias = ""
    if settings.ivr_tenant in settings.twilio_open_tenants:
        alias = " (and the unscoped /v1/streams/twilio, /v1/twiml)"
    return (
        f"embedded demo: Twilio streams and TwiML of tenant {names} are accepted WITHOUT X-Twilio-Signature "
        f"({paths}{alias}): anyone who reaches this port can run verifications against these callers. Give the "
        "tenant a Twilio auth token (voiceauth keys create --role telephony --twilio-auth-token ...) to require it"
    )
