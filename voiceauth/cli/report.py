"""Reports for security staff, as rich tables or ``--json``.

* ``voiceauth report kpi --since 2026-01-01``: the contact-centre KPIs. Reads the embedded store directly
  (``--data-dir``; every tenant, or ``--tenant``), or asks a running service (``--api-url`` with a security key:
  that tenant only). KPI definitions: :mod:`voiceauth.console.kpis`.
* ``voiceauth report voiceprints``: voiceprints per tenant by the embedding network that made them
  (:mod:`voiceauth.embedding.space`); those of another network than the configured one verify as ``EXPIRED`` until
  their callers re-enrol, so this is the re-enrolment to plan before or after changing ``telephone_adapter``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from voiceauth.calibration.stats import CalibrationError
from voiceauth.cli._common import user_errors
from voiceauth.cli._data import DATA_DIR, settings_for
from voiceauth.config import Settings
from voiceauth.store.models import Tenant
from voiceauth.store.repo import StoreTx

__all__ = ["app", "parse_since"]

app = typer.Typer(no_args_is_help=True)

_REL = re.compile(r"^(\d{1,4})([dhw])$")


def parse_since(text: str, now: dt.datetime) -> dt.datetime:
    """``7d``, ``12h``, ``2w`` (before ``now``) or an ISO date / date-time (UTC when no zone is given)."""
    m = _REL.match(text.strip())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        return now - dt.timedelta(**{{"d": "days", "h": "hours", "w": "weeks"}[unit]: n})
    try:
        t = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise CalibrationError(f"--since {text!r} is not understood; use e.g. 7d, 12h, 2w or 2026-01-31") from exc
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def _fmt_rate(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _table(tenant: str, k: dict[str, Any]) -> Table:
    t = Table(title=f"KPIs for tenant {tenant} since {k['since'][:19]}", show_lines=False)
    t.add_column("KPI")
    t.add_column("value", justify="right")
    t.add_column("based on")
    v = k["verifications"]
    t.add_row(
        "Enrolment rate", _fmt_rate(k["enrolment_rate"]), f"{k['enrolled']} enrolled of {k['registered']} registered"
    )
    t.add_row(
        "Verification success rate",
        _fmt_rate(k["verification_success_rate"]),
        ", ".join(f"{n} {c}" for n, c in sorted(v.items())) or "no verifications",
    )
    pin = k["fallback_to_pin_rate"]
    t.add_row(
        "Fallback-to-PIN rate",
        _fmt_rate(pin),
        "IVR call outcomes not available (ask the service: --api-url)"
        if k["calls_verified"] is None
        else f"{k['calls_verified_by_pin']} of {k['calls_verified']} verified calls",
    )
    s = k["avg_speech_s_to_decision"]
    t.add_row("Average speech time to decision", "n/a" if s is None else f"{s:.1f} s", "ACCEPT and REJECT decisions")
    per = k["complaints_per_100_rejects"]
    t.add_row(
        "False-reject complaints",
        str(k["false_reject_complaints"]),
        "no rejects" if per is None else f"{per:.1f} per 100 rejects",
    )
    if "challenges_issued" in k:  # liveness (absent from an older service's answer)
        fails = ", ".join(f"{r} {n}" for r, n in sorted(k["challenge_failures"].items())) or "no failures"
        t.add_row(
            "Liveness challenge pass rate",
            _fmt_rate(k["challenge_pass_rate"]),
            f"{k['challenges_answered']} answered of {k['challenges_issued']} issued; {fails}",
        )
    return t


def _per_tenant(
    settings: Settings, tenant: str | None, action: str, report: Callable[[StoreTx, Tenant], dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``report`` of every tenant in the store (or of ``tenant`` only) in one transaction, audited as ``action``."""
    from voiceauth.store.repo import open_store

    results: dict[str, dict[str, Any]] = {}
    store = open_store(settings)
    try:
        with store.transaction() as tx:
            q = select(Tenant).order_by(Tenant.name)
            for t in list(tx.session.execute(q if tenant is None else q.where(Tenant.name == tenant)).scalars()):
                results[t.name] = report(tx, t)
            tx.audit(action, actor="cli", details={"tenants": len(results)})
    finally:
        store.dispose()
    if tenant is not None and not results:
        raise CalibrationError(f"tenant {tenant!r} does not exist in the store")
    return results


@app.command("kpi")
def kpi(
    since: str = typer.Option("30d", "--since", help="7d, 12h, 2w, or an ISO date such as 2026-01-31."),
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant (store mode)."),
    data_dir: Path | None = DATA_DIR,
    api_url: str | None = typer.Option(None, "--api-url", help="Ask a running service instead of the store."),
    api_key: str | None = typer.Option(None, "--api-key", envvar="VOICEAUTH_API_KEY", help="A security key."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Enrolment rate, verification success, fallback-to-PIN, speech time to decision, false-reject complaints."""
    with user_errors():
        results: dict[str, dict[str, Any]] = {}
        if api_url:
            from voiceauth.cli.calibrate import ApiClient

            if not api_key:
                raise CalibrationError("--api-url needs a security --api-key (or VOICEAUTH_API_KEY)")
            start = parse_since(since, dt.datetime.now(dt.UTC))
            client = ApiClient(api_url, api_key)
            try:
                k = client.get("/v1/console/kpis", params={"since": start.isoformat()})
            finally:
                client.close()
            results[k.pop("tenant")] = k
        else:
            from voiceauth.console.kpis import compute_kpis
            from voiceauth.embedding.space import configured_space

            start = parse_since(since, dt.datetime.now(dt.UTC))  # a bad --since fails before the store is opened
            settings = settings_for(data_dir)
            space = configured_space(settings)
            results = _per_tenant(
                settings, tenant, "kpi.report", lambda tx, t: compute_kpis(tx, t.id, start, space=space)
            )
    if as_json:
        typer.echo(json.dumps(results, sort_keys=True))
        return
    console = Console()
    for name, k in results.items():
        console.print(_table(name, k))


@app.command("voiceprints")
def voiceprints(
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant."),
    data_dir: Path | None = DATA_DIR,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Voiceprints per tenant: usable by the configured network, or to be re-enrolled (made by another one)."""
    with user_errors():
        from voiceauth.embedding.space import configured_space, row_space
        from voiceauth.store.models import Speaker, Voiceprint

        settings = settings_for(data_dir)
        current = configured_space(settings)

        def count(tx: StoreTx, t: Tenant) -> dict[str, Any]:
            rows = tx.session.execute(
                select(Voiceprint.space, func.count())
                .join(Speaker, Speaker.id == Voiceprint.speaker_id)
                .where(Speaker.tenant_id == t.id)
                .group_by(Voiceprint.space)
            ).all()
            by_space: dict[str, int] = {}
            for space, n in rows:
                by_space[row_space(space)] = by_space.get(row_space(space), 0) + int(n)
            usable = by_space.get(current, 0)
            return {"network": current, "usable": usable, "to_re_enrol": sum(by_space.values()) - usable,
                    "by_network": by_space}  # fmt: skip

        results = _per_tenant(settings, tenant, "voiceprints.report", count)
    if as_json:
        typer.echo(json.dumps(results, sort_keys=True))
        return
    table = Table(title=f"Voiceprints (the configured network: {current})")
    for col in ("tenant", "usable", "to re-enrol", "by network"):
        table.add_column(col)
    for name, r in results.items():
        nets = ", ".join(f"{k}: {v}" for k, v in sorted(r["by_network"].items())) or "-"
        table.add_row(name, str(r["usable"]), str(r["to_re_enrol"]), nets)
    Console().print(table)
