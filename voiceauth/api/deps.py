"""Request dependencies: the services, the caller's API key (``Authorization: Bearer``), roles, rate limits.

Every ``/v1`` route depends on :func:`require`; a route only ever sees its caller's own tenant (the tenant is
taken from the key, never from the request), so a key cannot reach another tenant's data.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from voiceauth.api.problems import ApiProblem
from voiceauth.api.services import AppServices
from voiceauth.store.keys import ApiPrincipal, Role

__all__ = ["bearer", "get_services", "require"]

bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey", description="A voiceauth API key: `va_...`")


def get_services(request: Request) -> AppServices:
    services: AppServices = request.app.state.services
    return services


def _principal(
    request: Request,
    creds: HTTPAuthorizationCredentials | None = Security(bearer),
    services: AppServices = Depends(get_services),
) -> ApiPrincipal:
    challenge = {"WWW-Authenticate": 'Bearer realm="voiceauth"'}
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        services.metrics.auth_failures.labels("missing").inc()
        raise ApiProblem(401, "unauthenticated", "send an API key as `Authorization: Bearer <key>`", headers=challenge)
    address = request.client.host if request.client is not None else ""
    wait = services.auth_failures.peek(address)  # an address over its invalid-key budget is not even looked up
    principal = None if wait > 0 else services.authenticate(creds.credentials)
    if principal is None:
        services.metrics.auth_failures.labels("invalid").inc()
        wait = wait or services.auth_failures.acquire(address)
        if wait > 0:
            services.metrics.rate_limited.inc()
            raise ApiProblem(
                429,
                "rate-limited",
                f"too many requests with an invalid API key from this address (at most "
                f"{services.settings.api_auth_failures_per_minute:g} a minute, burst "
                f"{services.settings.api_auth_failure_burst}); retry after {wait:.1f} s",
                headers={"Retry-After": services.limiter.retry_after_header(wait)},
            )
        raise ApiProblem(401, "invalid-api-key", "the API key is not valid or has been revoked", headers=challenge)
    wait = services.limiter.acquire(principal.key_id)
    if wait > 0:
        services.metrics.rate_limited.inc()
        raise ApiProblem(
            429,
            "rate-limited",
            f"rate limit of {services.settings.api_rate_limit_per_minute:g} requests a minute "
            f"(burst {services.settings.api_rate_limit_burst}) reached for this key; retry after {wait:.1f} s",
            headers={"Retry-After": services.limiter.retry_after_header(wait)},
        )
    request.state.principal = principal
    return principal


def require(*roles: Role) -> Callable[..., ApiPrincipal]:
    """A dependency admitting keys with one of ``roles`` (403 for a valid key of another role)."""
    allowed = frozenset(roles)

    def dependency(principal: ApiPrincipal = Depends(_principal)) -> ApiPrincipal:
        if principal.role not in allowed:
            raise ApiProblem(
                403,
                "forbidden-role",
                f"a {principal.role.value} key may not do this; it needs a "
                f"{' or '.join(sorted(r.value for r in allowed))} key",
            )
        return principal

    return dependency
