"""The generated reference pages (docs/hooks/reference.py) cover the code they are generated from: every OpenAPI
operation and schema, every setting, every command; and every tested page is in the site's navigation."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType

import pytest
import yaml

from tests.docs.conftest import ROOT
from voiceauth.config import Settings


@pytest.fixture(scope="module")
def hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_reference_hook", ROOT / "docs" / "hooks" / "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_http_api_reference_has_every_operation_and_schema(hook: ModuleType) -> None:
    schema = hook.openapi_schema()
    page = hook.render_http_api(schema)
    for path, ops in schema["paths"].items():
        for method in ops:
            assert f"### `{method.upper()} {path}`" in page, (method, path)
    for name in schema["components"]["schemas"]:
        assert f"### {name} {{#" in page, name
    # the page keeps its marker, and links resolve to schema anchors that exist
    assert "<!-- generated: http-api -->" in (ROOT / "docs/reference/http-api.md").read_text(encoding="utf-8")
    anchors = set(re.findall(r"\{#(schema-[\w-]+)\}", page))
    assert set(re.findall(r"\(#(schema-[\w-]+)\)", page)) <= anchors


def test_configuration_reference_has_every_setting(hook: ModuleType) -> None:
    page = hook.render_settings()
    for name in Settings.model_fields:
        assert f"`VOICEAUTH_{name.upper()}`" in page, name


def test_cli_reference_has_every_command(hook: ModuleType) -> None:
    import typer

    from voiceauth.cli import app

    page = hook.render_cli()
    root = typer.main.get_command(app)
    names: list[str] = []

    def walk(cmd: object, words: list[str]) -> None:
        sub = getattr(cmd, "commands", None)
        if sub is None:
            names.append(" ".join(words))
            return
        for n, c in sub.items():
            walk(c, [*words, n])

    walk(root, ["voiceauth"])
    assert len(names) >= 15
    for name in names:
        assert f"### `{name}`" in page, name


def test_every_page_is_in_the_navigation() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    in_nav: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, str):
            in_nav.add(node)
        elif isinstance(node, list):
            for n in node:
                walk(n)
        elif isinstance(node, dict):
            for v in node.values():
                walk(v)

    walk(config["nav"])
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md") if "hooks" not in p.parts}
    assert pages == in_nav, {"not in nav": sorted(pages - in_nav), "missing": sorted(in_nav - pages)}


def test_no_page_describes_the_development_machines() -> None:
    """Machine-specific figures stay in benchmarks/results/ (each file names its CPU); pages link there."""
    machine = re.compile(r"zen ?4|epyc|xeon|sapphire|development (vm|machine)|load average|\b\d-core\b", re.I)
    for page in (ROOT / "docs").rglob("*.md"):
        text = page.read_text(encoding="utf-8")
        text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets (results files are named after their machine)
        text = re.sub(r"`[^`]*benchmarks/results/[^`]*`|`[\w.-]+\.(md|json)`", "", text)
        found = machine.search(text)
        assert found is None, f"{page.relative_to(ROOT)} describes a machine: {found.group(0)!r}"
