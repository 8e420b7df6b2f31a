"""The example Grafana dashboard and Prometheus alert rules (docs/operate/) read only what the service exports:
every metric an expression names is on the real app's ``/metrics``, every ``route`` matcher is a real route
template, every ``decision`` a real decision."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.api.conftest import Api, make_api, sample
from tests.docs.conftest import ROOT
from voiceauth.verification import Decision

DASHBOARD = ROOT / "docs" / "operate" / "grafana-dashboard.json"
ALERTS = ROOT / "docs" / "operate" / "prometheus-alerts.yml"

#: PromQL words that are not metric names: aggregations, functions, operators and their modifiers
_PROMQL_WORDS = {
    "sum", "avg", "min", "max", "count", "by", "without", "rate", "irate", "increase", "histogram_quantile",
    "absent", "and", "or", "unless", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "label_values", "topk", "bottomk", "quantile", "clamp_min", "clamp_max", "delta", "deriv", "time", "vector",
}  # fmt: skip
#: labels Prometheus adds to every scraped series
_TARGET_LABELS = {"job", "instance"}


def dashboard_expressions() -> list[str]:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["query"] for v in dash.get("templating", {}).get("list", []) if v.get("type") == "query"]
    return exprs


def alert_expressions() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or a Grafana ``label_values`` query) reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals (label values may hold braces)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", text)  # grouping labels
    text = re.sub(r",\s*[a-zA-Z_]\w*\s*\)", ")", text)  # label_values(metric, label)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][\w:]*", text):
        word = m.group(0)
        if word in _PROMQL_WORDS or re.fullmatch(r"\d+[smhdwy]?", word):
            continue
        if text[m.end() :].lstrip().startswith("("):
            continue  # a function
        names.add(word)
    return names


def matchers(expr: str) -> list[tuple[str, str, str, str]]:
    """(metric, label, operator, value) of every label matcher."""
    out = []
    for sel in re.finditer(r'([a-zA-Z_:][\w:]*)\{((?:[^{}"]|"(?:[^"\\]|\\.)*")*)\}', expr):
        for m in re.finditer(r'(\w+)\s*(=~|!=|!~|=)\s*"([^"]*)"', sel.group(2)):
            out.append((sel.group(1), m.group(1), m.group(2), m.group(3)))
    return out


def exported(exposition: str) -> dict[str, set[str]]:
    """Series names on /metrics -> the label names they carry (from samples; histogram/counter suffixes derived
    from the TYPE lines, so metrics without samples yet count too)."""
    names: dict[str, set[str]] = {}
    for line in exposition.splitlines():
        m = re.match(r"# TYPE (\S+) (\w+)", line)
        if m:
            base, kind = m.groups()
            if kind == "counter":  # prometheus_client names the TYPE line with or without "_total"
                names.setdefault(base if base.endswith("_total") else base + "_total", set())
            for s in {"histogram": ["_bucket", "_sum", "_count"]}.get(kind, [""] if kind != "counter" else []):
                names.setdefault(base + s, set())
            continue
        m = re.match(r"([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s", line)
        if m and not line.startswith("#"):
            labels = set(re.findall(r'(\w+)="', m.group(3) or ""))
            names.setdefault(m.group(1), set()).update(labels)
    return names


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    gen = make_api(f"sqlite+pysqlite:///{tmp_path_factory.mktemp('metrics') / 'm.db'}", tmp_path_factory.mktemp("h"))
    api = next(gen)
    # some traffic, so that the labelled series have samples: an enrolment, a verification, a refused key
    api.register("cust-1")
    api.enroll("cust-1", sample("george_a"))
    api.verify("cust-1", sample("george_b"))
    api.client.get("/v1/speakers/cust-1", headers={"Authorization": "Bearer va_not_a_key"})
    yield api
    for _ in gen:
        pass


@pytest.fixture(scope="module")
def series(api: Api) -> dict[str, set[str]]:
    r = api.client.get("/metrics")
    assert r.status_code == 200
    return exported(r.text)


def test_expression_parsing() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(voiceauth_model_embed_seconds_bucket{job=~"$job"}[5m])))'
        ' / sum(increase(x_total[1h])) > 0.5 and absent(up{job="a"})'
    )
    assert metric_names(expr) == {"voiceauth_model_embed_seconds_bucket", "x_total", "up"}
    assert metric_names("label_values(voiceauth_model_loaded, job)") == {"voiceauth_model_loaded"}
    assert matchers('a{route="/x/{ref}",status=~"5.."}') == [
        ("a", "route", "=", "/x/{ref}"),
        ("a", "status", "=~", "5.."),
    ]
    assert metric_names('rate(a_total{route="/v1/{ref}/b"}[5m])') == {"a_total"}


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_expression_reads_exported_metrics(source: str, series: dict[str, set[str]], api: Api) -> None:
    exprs = dashboard_expressions() if source == "dashboard" else alert_expressions()
    assert len(exprs) >= 8, f"the {source} has only {len(exprs)} expressions"
    routes = set(api.client.get("/openapi.json").json()["paths"])
    decisions = {d.value for d in Decision}
    for expr in exprs:
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        for name in names:
            assert name in series, f"{source}: {name!r} is not exported on /metrics (in {expr!r})"
        for metric, label, op, value in matchers(expr):
            if label in _TARGET_LABELS:
                continue
            if series[metric]:  # the series has samples: its label names are known
                assert label in series[metric], f"{source}: {metric} has no label {label!r} (in {expr!r})"
            if label == "route":
                assert op == "=" and value in routes, f"{source}: route {value!r} is not a route of the app"
            if label == "decision":
                values = value.split("|") if op == "=~" else [value]
                assert set(values) <= decisions, f"{source}: unknown decision in {value!r}"


def test_every_exported_metric_is_on_the_dashboard(series: dict[str, set[str]]) -> None:
    on_dashboard = {n for e in dashboard_expressions() for n in metric_names(e)}
    bases = {re.sub(r"_(bucket|sum|count|total)$", "", n) for n in on_dashboard}
    families = {re.sub(r"_(bucket|sum|count|total|created)$", "", n) for n in series}
    assert families <= bases, f"exported but not on the dashboard: {sorted(families - bases)}"


def test_monitoring_page_lists_every_exported_metric(series: dict[str, set[str]]) -> None:
    page = (ROOT / "docs" / "operate" / "monitoring.md").read_text(encoding="utf-8")
    families = {re.sub(r"_(bucket|sum|count|created)$", "", n) for n in series}
    families = {f for f in families if not f.endswith("_total") or f in page}
    missing = sorted(f for f in families if f"`{f}`" not in page and f"`{f}_total`" not in page)
    assert not missing, f"docs/operate/monitoring.md does not describe {missing}"


def test_dashboard_is_importable_json() -> None:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dash["title"] and dash["uid"] and dash["schemaVersion"] >= 30
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
        assert all(t["refId"] for t in p["targets"])
    assert [i["name"] for i in dash["__inputs"]] == ["DS_PROMETHEUS"]


def test_alert_rules_are_well_formed() -> None:
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    names = [r["alert"] for g in rules["groups"] for r in g["rules"]]
    assert len(names) == len(set(names))
    for g in rules["groups"]:
        for r in g["rules"]:
            assert r["labels"]["severity"] in ("page", "ticket") and r["annotations"]["summary"], r["alert"]


def test_alert_files_are_linked_from_the_page() -> None:
    page = (ROOT / "docs" / "operate" / "monitoring.md").read_text(encoding="utf-8")
    for path in (DASHBOARD, ALERTS):
        assert f"]({Path(path).name})" in page
