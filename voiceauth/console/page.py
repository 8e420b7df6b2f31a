"""The console's single page: plain HTML, CSS and JavaScript, no build step, no external resources.

The key pasted at login is kept in ``sessionStorage`` (gone when the tab closes) and sent as ``Authorization:
Bearer``; the page shows nothing until ``/v1/console/overview`` accepts it (a security key). All text from the API
is inserted with ``textContent`` (never as HTML).
"""

# ruff: noqa: E501  (the page is one HTML/JS string)
from __future__ import annotations

__all__ = ["CONSOLE_HTML"]

CONSOLE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>voiceauth security console</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f5f6f8;color:#222}
header{background:#1f3a5f;color:#fff;padding:.6em 1.2em;display:flex;justify-content:space-between;align-items:center}
main{padding:1em 1.2em;display:grid;grid-template-columns:repeat(auto-fit,minmax(34em,1fr));gap:1em}
section{background:#fff;border:1px solid #dde;border-radius:6px;padding:.6em 1em;overflow:auto;max-height:38em}
h2{font-size:1.05em;margin:.2em 0 .6em}table{border-collapse:collapse;width:100%;font-size:.86em}
td,th{border-bottom:1px solid #eee;padding:.2em .4em;text-align:left}.num{text-align:right}
.bad{color:#b00}#calibration{max-height:none}#audit{grid-column:1/-1}.nowrap{white-space:nowrap}.ok{color:#070}button{cursor:pointer}#det{max-width:100%}
#login{max-width:32em;margin:4em auto;background:#fff;padding:1.5em;border-radius:6px;border:1px solid #dde}
#login input{width:100%;font-family:monospace}.hidden{display:none}.kpi{font-size:1.3em;font-weight:600}
</style></head><body>
<header><b>voiceauth security console</b><span id="who"></span></header>
<div id="login"><h2>Log in</h2><p>Paste a <b>security</b> API key of your tenant. It is kept only in this tab.</p>
<input id="key" type="password" autocomplete="off" placeholder="va_...">
<p><button id="login-btn">Log in</button> <span id="login-error" class="bad"></span></p></div>
<main id="app" class="hidden">
<section id="ops"><h2>Operating points</h2>
<table><thead><tr><th>name</th><th class="num">threshold</th><th>measured FAR [95% CI]</th>
<th>measured FRR [95% CI]</th><th>set</th></tr></thead><tbody id="ops-body"></tbody></table>
<p>In use: <select id="op-select"></select> <button id="op-save">Use</button> <span id="ops-msg"></span></p>
<p id="ops-source"></p></section>
<section id="calibration"><h2>Latest calibration</h2><div id="cal-summary">No report published yet.</div>
<img id="det" alt="DET curve" class="hidden"></section>
<section id="kpis"><h2>KPIs (last <select id="kpi-days"><option>7</option><option selected>30</option>
<option>90</option></select> days)</h2><table><tbody id="kpi-body"></tbody></table>
<p>Record a false-reject complaint: <input id="complaint-ref" placeholder="caller reference (optional)">
<button id="complaint-btn">Record</button></p></section>
<section id="decisions"><h2>Recent decisions</h2><table><thead><tr><th>time</th><th>caller</th><th>decision</th>
<th class="num">score</th><th class="num">threshold</th><th class="num">speech s</th></tr></thead>
<tbody id="dec-body"></tbody></table></section>
<section id="lockouts"><h2>Lockouts</h2><table><thead><tr><th>caller</th><th class="num">failures</th>
<th>locked until</th><th>voice disabled</th><th></th></tr></thead><tbody id="lock-body"></tbody></table></section>
<section id="watchlist"><h2>Fraudster watchlist</h2><table><thead><tr><th>id</th><th>label</th><th>added</th></tr>
</thead><tbody id="watch-body"></tbody></table></section>
<section id="audit"><h2>Audit log <button id="chain-btn">Check chain</button> <span id="chain"></span></h2>
<table><thead><tr><th class="num">seq</th><th>time</th><th>actor</th><th>action</th><th>details</th></tr></thead>
<tbody id="audit-body"></tbody></table></section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const pct = (x) => (x === null || x === undefined) ? "n/a" : (100 * x).toPrecision(3) + "%";
const ci = (v, c, m) => pct(v) + " [" + pct(c[0]) + ", " + pct(c[1]) + "]" + (m === "rule-of-3" ? " (rule of 3)" : "");
async function api(method, path, body) {
  const opts = {method, headers: {"Authorization": "Bearer " + sessionStorage.getItem("voiceauth.key")}};
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const r = await fetch(path, opts);
  const data = r.status === 204 ? null : await r.json();
  if (!r.ok) { const e = new Error((data && data.detail) || r.statusText); e.status = r.status; throw e; }
  return data;
}
function row(tbody, cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c); else td.textContent = (c === null || c === undefined) ? "" : String(c);
    if (typeof c === "number") td.className = "num";
    tr.appendChild(td);
  }
  tbody.appendChild(tr); return tr;
}
function button(label, fn) { const b = document.createElement("button"); b.textContent = label; b.onclick = fn; return b; }
async function loadOverview() {
  const o = await api("GET", "/v1/console/overview");
  $("who").textContent = "tenant " + o.tenant;
  const body = $("ops-body"); body.textContent = "";
  const sel = $("op-select"); sel.textContent = "";
  const th = o.thresholds;
  for (const [name, value] of Object.entries(th.effective)) {
    const m = o.measured[name];
    const input = document.createElement("input"); input.type = "number"; input.step = "0.1"; input.min = "0";
    input.max = "100"; input.value = value.toFixed(2); input.id = "thr-" + name; input.style.width = "6em";
    const save = button("Save", async () => {
      try { await api("PUT", "/v1/thresholds/" + encodeURIComponent(name), {value: parseFloat(input.value)});
            $("ops-msg").textContent = name + " saved"; await refresh(); }
      catch (e) { $("ops-msg").textContent = e.message; }
    });
    save.id = "save-" + name;
    const cell = document.createElement("span"); cell.append(input, " ", save);
    row(body, [name + (name === th.operating_point ? " (in use)" : ""), Number(value.toFixed(2)),
               m ? ci(m.far, m.far_ci, m.far_ci_method) : "no calibration", m ? ci(m.frr, m.frr_ci, m.frr_ci_method) : "", cell]);
    const opt = document.createElement("option"); opt.value = name; opt.textContent = name;
    opt.selected = name === th.operating_point; sel.appendChild(opt);
  }
  $("ops-source").textContent = o.calibration ? "Measured on " + o.calibration.source + " (" +
    o.calibration.created_at + ")" : "Publish a report with voiceauth calibrate --publish to measure these.";
}
async function loadCalibration() {
  try {
    const c = await api("GET", "/v1/console/calibration"); const r = c.report; const at = r.at_threshold;
    $("cal-summary").textContent = r.speakers + " speakers, " + r.target_trials + " genuine / " + r.nontarget_trials +
      " impostor trials. EER " + pct(r.eer) + ", minDCF(0.01) " + r.min_dcf["0.01"].toFixed(3) + ". Threshold for FAR " +
      r.target_far + ": " + r.threshold.toFixed(2) + " (FAR " + ci(at.far, at.far_ci, at.far_ci_method) + ", FRR " + ci(at.frr, at.frr_ci, at.frr_ci_method) +
      ")." + (r.warnings.length ? " Warnings: " + r.warnings.join(" ") : "");
    $("det").src = c.det_png; $("det").classList.remove("hidden");
  } catch (e) { if (e.status !== 404) throw e; }
}
async function loadKpis() {
  const k = await api("GET", "/v1/console/kpis?days=" + $("kpi-days").value);
  const body = $("kpi-body"); body.textContent = "";
  const items = [["Enrolment rate", pct(k.enrolment_rate) + " (" + k.enrolled + " of " + k.registered + ")"],
    ["Verification success rate", pct(k.verification_success_rate)],
    ["Fallback-to-PIN rate", k.fallback_to_pin_rate === null ? "n/a (no IVR calls)" : pct(k.fallback_to_pin_rate)],
    ["Average speech time to decision", k.avg_speech_s_to_decision === null ? "n/a" : k.avg_speech_s_to_decision + " s"],
    ["False-reject complaints", String(k.false_reject_complaints)],
    ["Liveness challenge pass rate", k.challenges_answered ? pct(k.challenge_pass_rate) + " (" + k.challenges_answered
      + " answered of " + k.challenges_issued + ")" : "n/a (no challenges answered)"],
    ["Challenge failures by reason", Object.entries(k.challenge_failures || {}).map(([r, n]) => r + " " + n).join(", ")
      || "none"]];
  for (const [n, v] of items) { const tr = row(body, [n, v]); tr.lastChild.className = "kpi"; }
}
async function loadDecisions() {
  const body = $("dec-body"); body.textContent = "";
  for (const d of await api("GET", "/v1/console/decisions?limit=50"))
    row(body, [d.at.replace("T", " ").slice(0, 19), d.speaker, d.decision,
               d.score === null ? "" : Number(d.score.toFixed(1)), d.threshold === null ? "" : Number(d.threshold.toFixed(1)),
               Number(d.speech_s.toFixed(1))]);
}
async function loadLockouts() {
  const body = $("lock-body"); body.textContent = "";
  for (const l of await api("GET", "/v1/console/lockouts"))
    row(body, [l.speaker, l.failures, l.locked_until || "", l.voice_disabled ? "yes" : "no",
      button("Clear", async () => { await api("DELETE", "/v1/console/lockouts/" + encodeURIComponent(l.speaker));
                                    await refresh(); })]);
}
async function loadWatchlist() {
  const body = $("watch-body"); body.textContent = "";
  for (const w of await api("GET", "/v1/watchlist")) row(body, [w.id, w.label, w.created_at.slice(0, 19)]);
}
async function loadAudit() {
  const body = $("audit-body"); body.textContent = "";
  for (const a of await api("GET", "/v1/console/audit?limit=100"))
    row(body, [a.seq, a.ts.replace("T", " ").slice(0, 19), a.actor, a.action, JSON.stringify(a.details)]).children[1].className = "nowrap";
}
async function checkChain() {
  const c = await api("GET", "/v1/audit/verify");
  $("chain").textContent = c.ok ? "chain OK (" + c.events + " events)" : "BROKEN at " + c.first_bad_seq + ": " + c.reason;
  $("chain").className = c.ok ? "ok" : "bad";
}
async function refresh() {
  await loadOverview();
  await Promise.all([loadCalibration(), loadKpis(), loadDecisions(), loadLockouts(), loadWatchlist()]);
  await loadAudit();
}
async function login() {
  $("login-error").textContent = "";
  try { await loadOverview(); }
  catch (e) { sessionStorage.removeItem("voiceauth.key"); $("login-error").textContent = e.message; return; }
  $("login").classList.add("hidden"); $("app").classList.remove("hidden");
  await refresh(); await checkChain();
}
$("login-btn").onclick = () => { sessionStorage.setItem("voiceauth.key", $("key").value.trim()); login(); };
$("op-save").onclick = async () => {
  try { await api("PUT", "/v1/operating-point", {name: $("op-select").value}); $("ops-msg").textContent = "in use: " +
        $("op-select").value; await refresh(); } catch (e) { $("ops-msg").textContent = e.message; }
};
$("chain-btn").onclick = checkChain;
$("kpi-days").onchange = loadKpis;
$("complaint-btn").onclick = async () => {
  const ref = $("complaint-ref").value.trim();
  await api("POST", "/v1/console/complaints", ref ? {speaker: ref} : {}); await loadKpis(); await loadAudit();
};
if (sessionStorage.getItem("voiceauth.key")) login();
</script></body></html>
"""
