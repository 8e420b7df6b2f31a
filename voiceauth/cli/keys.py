"""``voiceauth keys``: API keys (create, list, revoke) and the data key (rotate-data-key)."""

from __future__ import annotations

import base64
import binascii
import time
from pathlib import Path

import typer
from rich.console import Console

from voiceauth.cli._common import user_errors
from voiceauth.cli._data import DATA_DIR, settings_for
from voiceauth.errors import ConfigError
from voiceauth.store.ani import reencrypt_caller_numbers
from voiceauth.store.crypto import add_key_to_file, key_file_path, load_keyring
from voiceauth.store.keys import Role, create_api_key, list_api_keys, revoke_api_key
from voiceauth.store.repo import open_store

__all__ = ["app"]

app = typer.Typer(help="API keys and the data key.", no_args_is_help=True)
_ROLES = ", ".join(r.value for r in Role)


@app.command("create")
def create(
    tenant: str = typer.Option(..., "--tenant", help="Tenant name (created when it does not exist)."),
    role: str = typer.Option(..., "--role", help=f"One of {_ROLES}."),
    label: str = typer.Option("", "--label", help="A note to tell keys apart."),
    audiohook_secret: str | None = typer.Option(
        None,
        "--audiohook-secret",
        help="The AudioHook client secret (base64), stored encrypted; AudioHook streams of this key must be signed.",
    ),
    twilio_auth_token: str | None = typer.Option(
        None,
        "--twilio-auth-token",
        help="The tenant's Twilio account auth token (telephony or admin key), stored encrypted; the tenant's "
        "Twilio streams and TwiML (/v1/streams/twilio/TENANT, /v1/twiml/TENANT) must then be signed with it.",
    ),
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Create an API key and print it once, on the last line (it is stored only as a hash)."""
    with user_errors():
        secret = None
        if audiohook_secret is not None:
            try:
                secret = base64.b64decode(audiohook_secret, validate=True)
            except binascii.Error as exc:
                raise ConfigError("--audiohook-secret is not valid base64; pass the secret base64-encoded") from exc
        store = open_store(settings_for(data_dir))
        try:
            with store.transaction() as tx:
                t = tx.get_or_create_tenant(tenant, actor="cli")
                row, key = create_api_key(
                    tx,
                    t.id,
                    role,
                    label=label,
                    actor="cli",
                    audiohook_secret=secret,
                    twilio_auth_token=twilio_auth_token,
                )
        finally:
            store.dispose()
    if twilio_auth_token is not None:
        typer.echo(f"tenant {tenant!r}: Twilio streams and TwiML must now be signed with this auth token")
    typer.echo(f"created {row.role} key {row.prefix} for tenant {tenant!r} (shown once; keep it secret):")
    typer.echo(key)


@app.command("list")
def list_keys(tenant: str = typer.Option(..., "--tenant"), data_dir: Path | None = DATA_DIR) -> None:
    """List a tenant's keys (prefix, role, state); keys themselves cannot be shown again."""
    with user_errors():
        store = open_store(settings_for(data_dir))
        try:
            with store.transaction() as tx:
                rows = list_api_keys(tx, tx.tenant(tenant).id)
        finally:
            store.dispose()
    for r in rows:
        state = "revoked" if r.revoked_at else "active"
        typer.echo(f"{r.id}\t{r.prefix}\t{r.role}\t{state}\t{r.label}")


@app.command("revoke")
def revoke(
    tenant: str = typer.Option(..., "--tenant"),
    key_id: int = typer.Argument(..., help="The key's id (see `voiceauth keys list`)."),
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Revoke one key (effective on its next use)."""
    with user_errors():
        store = open_store(settings_for(data_dir))
        try:
            with store.transaction() as tx:
                row = revoke_api_key(tx, tx.tenant(tenant).id, key_id, actor="cli")
        finally:
            store.dispose()
    typer.echo(f"revoked key {row.prefix}")


@app.command("rotate-data-key")
def rotate_data_key(
    data_dir: Path | None = DATA_DIR,
    reencrypt_only: bool = typer.Option(
        False, "--reencrypt-only", help="Do not add a key; re-encrypt under the first key already configured."
    ),
    grace_s: float = typer.Option(
        5.0, "--grace-s", min=0, help="Wait after adding the key so running servers load it before rows move."
    ),
) -> None:
    """Put a new data key in front of the key file and re-encrypt every encrypted row with it (voiceprints, enrolment
    utterances, watchlist, caller numbers, AudioHook secrets and Twilio auth tokens), without downtime.

    Running servers re-read the key file (every ``api_key_reload_s``) and decrypt with old and new keys alike, so
    rows can be re-encrypted while they serve. With ``VOICEAUTH_DATA_KEY`` (keys from the environment) put the
    new key first there, restart the servers, then run this with ``--reencrypt-only``.
    """
    console = Console()
    with user_errors():
        settings = settings_for(data_dir)
        if not reencrypt_only:
            if settings.data_key is not None:
                raise ConfigError(
                    "data keys come from VOICEAUTH_DATA_KEY, which this command cannot change: put a new key "
                    "first in it, restart the servers, then run `voiceauth keys rotate-data-key --reencrypt-only`"
                )
            load_keyring(settings)  # creates the dev key file when that is how keys are configured
            new_id = add_key_to_file(key_file_path(settings))
            console.print(f"new active data key {new_id} added to {key_file_path(settings)}")
            if grace_s:
                time.sleep(grace_s)
        store = open_store(settings)
        try:
            n = store.reencrypt(actor="cli") + reencrypt_caller_numbers(store, actor="cli")
        finally:
            store.dispose()
    typer.echo(f"re-encrypted {n} rows under data key {store.keyring.active_id}")
