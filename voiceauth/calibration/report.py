"""The calibration report: JSON, the two PNG figures and one self-contained HTML page (images inlined as base64).

:func:`build_report` turns trials into the report's JSON object (pure); :func:`render_html` makes the page;
:func:`write_report` writes ``report.json``, ``det.png``, ``scores.png`` and ``report.html`` into a folder.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voiceauth.calibration.plots import det_png, distribution_png
from voiceauth.calibration.stats import Analysis, Trials, analyze

__all__ = ["Report", "build_report", "render_html", "write_report"]


@dataclass(frozen=True)
class Report:
    data: dict[str, Any]  # the JSON object
    det_png: bytes
    scores_png: bytes


def build_report(
    trials: Trials,
    *,
    target_far: float = 0.001,
    source: str = "",
    scoring_backend: str = "",
    replicates: int = 1000,
    current_thresholds: Mapping[str, float] | None = None,
    now: dt.datetime | None = None,
) -> Report:
    """Analyse the trials and draw the figures; ``current_thresholds`` (name -> value) are marked and measured."""
    analysis: Analysis = analyze(trials, target_far=target_far, replicates=replicates)
    marks = {f"target FAR {target_far:g}": analysis.threshold, **dict(current_thresholds or {})}
    measured = {}
    if current_thresholds:
        extra = analyze(
            trials, target_far=target_far, thresholds=list(current_thresholds.values()), replicates=replicates
        )
        measured = {name: _point(p) for name, p in zip(current_thresholds, extra.points, strict=True)}
    data = {
        "kind": "voiceauth.calibration",
        "version": 1,
        "created_at": (now or dt.datetime.now(dt.UTC)).isoformat(),
        "source": source,
        "scoring_backend": scoring_backend,
        "scale": "calibrated 0-100; accept when score >= threshold",
        **{k: v for k, v in analysis.to_dict().items() if k not in ("points", "at_threshold")},
        "at_threshold": _point(analysis.at_threshold),
        "points": [_point(p) for p in analysis.points],
        "current_thresholds": measured,
    }
    return Report(data, det_png(trials, marks), distribution_png(trials, marks))


def _point(p: Any) -> dict[str, Any]:
    return {
        "threshold": p.threshold,
        "far": p.far.value,
        "far_ci": [p.far.low, p.far.high],
        "far_ci_method": p.far.method,
        "frr": p.frr.value,
        "frr_ci": [p.frr.low, p.frr.high],
        "frr_ci_method": p.frr.method,
        "false_accepts": p.false_accepts,
        "false_rejects": p.false_rejects,
    }


def _pct(x: float) -> str:
    return f"{100 * x:.3g}%"


def _ci(p: Mapping[str, Any], key: str) -> str:
    lo, hi = p[f"{key}_ci"]
    return f"{_pct(p[key])} [{_pct(lo)}, {_pct(hi)}]" + (" (rule of 3)" if p[f"{key}_ci_method"] == "rule-of-3" else "")


def render_html(report: Report) -> str:
    """One HTML page with everything inlined (no external files, scripts or fonts)."""
    d = report.data
    e = html.escape
    det = base64.b64encode(report.det_png).decode()
    dist = base64.b64encode(report.scores_png).decode()
    at = d["at_threshold"]
    warn = "".join(f'<li class="warn">{e(w)}</li>' for w in d["warnings"]) or "<li>none</li>"
    rows = "".join(
        f"<tr><td>{p['threshold']:.1f}</td><td>{e(_ci(p, 'far'))}</td><td>{e(_ci(p, 'frr'))}</td></tr>"
        for p in d["points"]
        if 0.0 < p["far"] < 1.0 or 0.0 < p["frr"] < 1.0
    )
    current = "".join(
        f"<tr><td>{e(name)}</td><td>{p['threshold']:.2f}</td><td>{e(_ci(p, 'far'))}</td>"
        f"<td>{e(_ci(p, 'frr'))}</td></tr>"
        for name, p in d["current_thresholds"].items()
    )
    current_table = (
        f"<h2>Current operating points</h2><table><tr><th>name</th><th>threshold</th><th>FAR [95% CI]</th>"
        f"<th>FRR [95% CI]</th></tr>{current}</table>"
        if current
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>voiceauth calibration report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:right}}.warn{{color:#a00}}
img{{max-width:100%;border:1px solid #ddd}}</style></head><body>
<h1>Calibration report</h1>
<p>Source: <code>{e(d["source"])}</code> &middot; scoring: {e(d["scoring_backend"])} &middot; {e(d["created_at"])}</p>
<p>{d["speakers"]} speakers, {d["target_trials"]} genuine and {d["nontarget_trials"]} impostor trials.
Scores on the calibrated 0-100 scale; a trial is accepted when score &ge; threshold.
Intervals are 95%: bootstrap over speakers ({d["bootstrap_replicates"]} replicates), or the rule of 3 when no error
was observed.</p>
<h2>Summary</h2><table>
<tr><th>EER</th><td>{_pct(d["eer"])}</td></tr>
<tr><th>minDCF (p_target 0.01)</th><td>{d["min_dcf"]["0.01"]:.4f}</td></tr>
<tr><th>minDCF (p_target 0.001)</th><td>{d["min_dcf"]["0.001"]:.4f}</td></tr>
<tr><th>target FAR</th><td>{d["target_far"]:g}</td></tr>
<tr><th>threshold meeting it</th><td id="threshold">{d["threshold"]:.2f}</td></tr>
<tr><th>FAR there [95% CI]</th><td>{e(_ci(at, "far"))}</td></tr>
<tr><th>FRR there [95% CI]</th><td>{e(_ci(at, "frr"))}</td></tr>
<tr><th>impostor trials needed (ISO/IEC 19795-1, 3 / target)</th><td>{d["min_impostor_trials"]}</td></tr>
</table>
<h2>Warnings</h2><ul>{warn}</ul>
{current_table}
<h2>DET curve</h2><img id="det" alt="DET curve" src="data:image/png;base64,{det}">
<h2>Score distributions</h2><img id="scores" alt="score distributions" src="data:image/png;base64,{dist}">
<h2>FAR and FRR by threshold</h2>
<table><tr><th>threshold</th><th>FAR [95% CI]</th><th>FRR [95% CI]</th></tr>{rows}</table>
</body></html>
"""


def write_report(report: Report, folder: Path) -> dict[str, Path]:
    """Write report.json, det.png, scores.png and report.html into ``folder`` (created) -> name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": folder / "report.json",
        "det": folder / "det.png",
        "scores": folder / "scores.png",
        "html": folder / "report.html",
    }
    paths["json"].write_text(json.dumps(report.data, indent=2, sort_keys=True), encoding="utf-8")
    paths["det"].write_bytes(report.det_png)
    paths["scores"].write_bytes(report.scores_png)
    paths["html"].write_text(render_html(report), encoding="utf-8")
    return paths
