"""``voiceauth calibrate DIR --target-far 0.001 --out REPORT_DIR [--apply --tenant T --operating-point NAME]``.

Scores every trial of DIR (a folder per speaker, or a trial list file; see :mod:`voiceauth.calibration.trials`)
through the production front end, engine and scorer, and writes the calibration report (JSON, DET and score PNGs,
self-contained HTML). With ``--api-url`` and a ``security`` key the tenant's current thresholds are measured too;
``--publish`` uploads the report to the console, and ``--apply`` also sets the tenant's threshold ``NAME`` to the
value meeting the target FAR (through the HTTP API, which audits the change).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import typer

from voiceauth.calibration.report import Report, build_report, write_report
from voiceauth.calibration.stats import CalibrationError, Trials
from voiceauth.calibration.trials import score_trials, trial_spec
from voiceauth.cli._common import user_errors
from voiceauth.config import get_settings

__all__ = ["ApiClient", "console_payload", "register"]


class ApiClient:
    """The few calls ``calibrate`` and ``report`` make to a running voiceauth API (Bearer key)."""

    def __init__(self, url: str, key: str, timeout_s: float = 30.0) -> None:
        import httpx

        self._http = httpx.Client(
            base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=timeout_s
        )

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        try:
            r = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise CalibrationError(f"could not reach the voiceauth API at {self._http.base_url}: {exc}") from exc
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise CalibrationError(f"{method} {path} was refused ({r.status_code}): {detail}")
        return r.json() if r.content else None

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, **kw: Any) -> Any:
        return self._call("GET", path, **kw)

    def put(self, path: str, body: Any) -> Any:
        return self._call("PUT", path, json=body)

    def post(self, path: str, body: Any) -> Any:
        return self._call("POST", path, json=body)


def console_payload(report: Report, trials: Trials | None) -> dict[str, Any]:
    """What ``POST /v1/console/calibration`` takes: the report, its PNGs, and anonymised trials (scores only)."""
    body: dict[str, Any] = {
        "report": report.data,
        "det_png": base64.b64encode(report.det_png).decode(),
        "scores_png": base64.b64encode(report.scores_png).decode(),
    }
    if trials is not None:  # speaker names are not sent: indices are enough to bootstrap over speakers
        body["trials"] = {
            "scores": [round(float(s), 4) for s in trials.scores],
            "enrol": trials.enrol.tolist(),
            "probe": trials.probe.tolist(),
        }
    return body


def calibrate(
    source: Path = typer.Argument(..., metavar="DIR", help="DIR/<speaker>/<audio files>, or a trial list file."),
    target_far: float = typer.Option(0.001, "--target-far", help="False-accept rate the threshold must meet."),
    out: Path = typer.Option(Path("calibration-report"), "--out", help="Folder for the report files."),
    replicates: int = typer.Option(1000, "--replicates", min=50, max=20000, help="Bootstrap replicates."),
    api_url: str | None = typer.Option(None, "--api-url", help="voiceauth API, e.g. http://127.0.0.1:8000."),
    api_key: str | None = typer.Option(None, "--api-key", envvar="VOICEAUTH_API_KEY", help="A security key."),
    apply: bool = typer.Option(False, "--apply", help="Set the tenant's threshold (needs --api-url, --tenant)."),
    publish: bool = typer.Option(False, "--publish", help="Upload the report to the console (implied by --apply)."),
    tenant: str | None = typer.Option(None, "--tenant", help="Tenant the key must belong to (checked)."),
    operating_point: str = typer.Option("high_security", "--operating-point", help="Threshold name to set."),
) -> None:
    """Measure FAR/FRR with 95% CIs on DIR, pick the threshold meeting --target-far, write the report."""
    client: ApiClient | None = None
    try:
        with user_errors():
            if not 0.0 < target_far < 1.0:
                raise CalibrationError(f"--target-far {target_far} must be strictly between 0 and 1, e.g. 0.001")
            current: dict[str, float] = {}
            if apply or publish or api_url:
                if not api_url or not api_key:
                    raise CalibrationError("--apply/--publish need --api-url and a security --api-key")
                client = ApiClient(api_url, api_key)
                name = client.get("/v1/tenant")["name"]
                if apply and tenant is None:
                    raise CalibrationError("--apply needs --tenant (the tenant whose threshold changes)")
                if tenant is not None and name != tenant:
                    raise CalibrationError(f"the API key belongs to tenant {name!r}, not {tenant!r}")
                current = {k: float(v) for k, v in client.get("/v1/thresholds")["effective"].items()}
            settings = get_settings()
            from voiceauth.cli.evaluate import embed_file
            from voiceauth.embedding.factory import create_engine
            from voiceauth.scoring.factory import create_scorer

            spec = trial_spec(source)
            engine = create_engine(settings)
            trials = score_trials(spec, lambda f: embed_file(f, engine, settings), create_scorer(settings))
            report = build_report(
                trials,
                target_far=target_far,
                source=str(source),
                scoring_backend=settings.scoring_backend,
                replicates=replicates,
                current_thresholds=current,
            )
            paths = write_report(report, out)
            d = report.data
            at = d["at_threshold"]
            typer.echo(
                f"{d['speakers']} speakers, {d['target_trials']} genuine / {d['nontarget_trials']} impostor trials: "
                f"EER {100 * d['eer']:.2f}%, minDCF(0.01) {d['min_dcf']['0.01']:.3f}, minDCF(0.001) "
                f"{d['min_dcf']['0.001']:.3f}"
            )
            typer.echo(
                f"threshold for FAR <= {target_far:g}: {d['threshold']:.2f} (FAR {100 * at['far']:.3f}% "
                f"[{100 * at['far_ci'][0]:.3f}, {100 * at['far_ci'][1]:.3f}], FRR {100 * at['frr']:.2f}% "
                f"[{100 * at['frr_ci'][0]:.2f}, {100 * at['frr_ci'][1]:.2f}])"
            )
            for w in d["warnings"]:
                typer.echo(f"warning: {w}", err=True)
            typer.echo(f"report: {paths['html']}")
            if client is not None and (apply or publish):
                client.post("/v1/console/calibration", console_payload(report, trials))
                typer.echo("report published to the console")
            if client is not None and apply:
                value = float(d["threshold"])
                if value > 100.0:
                    raise CalibrationError(
                        f"no threshold on the 0-100 scale meets FAR {target_far:g} on this data (needs {value:.3f}); "
                        "collect more impostor trials"
                    )
                client.put(f"/v1/thresholds/{operating_point}", {"value": round(value, 4)})
                typer.echo(f"tenant {tenant!r}: {operating_point} threshold set to {value:.2f} (audited)")
    finally:
        if client is not None:
            client.close()


def register(app: typer.Typer) -> None:
    app.command()(calibrate)
