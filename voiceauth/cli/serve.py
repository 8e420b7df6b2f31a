"""``voiceauth serve``: the HTTP API under uvicorn.

On embedded defaults (SQLite in the data directory, no ``database_url``) it also makes sure a demo tenant exists
and issues fresh demo keys (telephony, security, admin), printed at start; the previous start's demo keys are
revoked, since keys are stored only as hashes and cannot be shown again. ``--no-demo`` skips this. In the demo,
Twilio streams and TwiML of the demo tenant are accepted unsigned while it has no Twilio auth token (one warning at
start says so); everywhere else a tenant's Twilio traffic must be signed with its own token (:mod:`ivr.twilio_auth`).

SIGTERM drains first: new calls are refused, ``/readyz`` answers 503, in-flight requests and calls get
``api_drain_s`` to finish (see :mod:`voiceauth.api.server`). Run several processes on one PostgreSQL
(``VOICEAUTH_DATABASE_URL``) to scale out; all shared state lives in the database.
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from sqlalchemy import select

from ivr.twilio_auth import open_tenants_warning
from voiceauth.cli._common import user_errors
from voiceauth.cli._data import DATA_DIR, settings_for
from voiceauth.config import Settings
from voiceauth.store.keys import Role, create_api_key, revoke_api_key, twilio_tokens
from voiceauth.store.models import ApiKey
from voiceauth.store.repo import Store, open_store

__all__ = ["DEMO_LABEL", "demo_twilio", "issue_demo_keys", "register"]

log = logging.getLogger(__name__)

DEMO_LABEL = "demo (voiceauth serve)"


def issue_demo_keys(store: Store, tenant: str) -> dict[str, str]:
    """Create the demo tenant if needed, revoke earlier demo keys, return new ones by role."""
    with store.transaction() as tx:
        t = tx.get_or_create_tenant(tenant, actor="serve")
        old = tx.session.execute(
            select(ApiKey.id).where(ApiKey.tenant_id == t.id, ApiKey.label == DEMO_LABEL, ApiKey.revoked_at.is_(None))
        ).scalars()
        for key_id in list(old):
            revoke_api_key(tx, t.id, key_id, actor="serve")
        return {r.value: create_api_key(tx, t.id, r.value, label=DEMO_LABEL, actor="serve")[1] for r in Role}


def demo_twilio(settings: Settings, store: Store) -> Settings:
    """The embedded demo's Twilio: ``/v1/streams/twilio`` (and ``/v1/twiml``) belong to the demo tenant unless
    ``ivr_tenant`` is set, and the demo tenant accepts unsigned Twilio traffic while it has no Twilio auth token."""
    tenant = settings.api_demo_tenant
    with store.transaction() as tx:
        has_token = bool(twilio_tokens(tx, tenant))
    update: dict[str, object] = {"ivr_tenant": settings.ivr_tenant or tenant}
    if not has_token and not (settings.twilio_auth_token and update["ivr_tenant"] == tenant):
        update["twilio_open_tenants"] = sorted({*settings.twilio_open_tenants, tenant})
    return settings.model_copy(update=update)


def serve(
    data_dir: Path | None = DATA_DIR,
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port."),
    demo: bool = typer.Option(True, "--demo/--no-demo", help="On embedded defaults, issue demo keys at start."),
) -> None:
    """Serve the HTTP API (OpenAPI at /docs and /openapi.json)."""
    from voiceauth.api import create_app
    from voiceauth.api.server import serve_app
    from voiceauth.pipeline import default_scoring

    with user_errors():
        settings: Settings = settings_for(data_dir)
        scorer, points = default_scoring(settings)  # fail here, clearly, when the scoring files are missing
        store = open_store(settings)
        if demo and settings.database_url is None:
            keys = issue_demo_keys(store, settings.api_demo_tenant)
            typer.echo(f"voiceauth: data in {settings.resolved_data_dir}; demo tenant {settings.api_demo_tenant!r}")
            typer.echo("demo keys (new at every start; the previous ones are revoked):")
            for role, key in keys.items():
                typer.echo(f"  {role + ' key:':15s}{key}")
            settings = demo_twilio(settings, store)
        warning = open_tenants_warning(settings)
        if warning:
            log.warning("%s", warning)
            typer.echo(f"WARNING: {warning}", err=True)
        typer.echo(f"voiceauth: loading the speaker model, then listening on http://{host}:{port}", err=False)
        app = create_app(settings, store=store, scorer=scorer, operating_points=points, watch_data_keys=True)
    serve_app(app, host=host, port=port, drain_s=settings.api_drain_s)
    store.dispose()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
