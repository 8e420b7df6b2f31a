"""mkdocs hook: the reference pages are generated from the code at build time, so they cannot drift from it.

* ``<!-- generated: http-api -->`` becomes the HTTP API reference, rendered from the OpenAPI schema of the real
  ``voiceauth.api`` app (``create_app``; nothing is loaded or served), and the schema itself is published as
  ``reference/openapi.json`` next to it;
* ``<!-- generated: settings -->`` becomes the table of every ``Settings`` field (``VOICEAUTH_*`` variables);
* ``<!-- generated: cli -->`` becomes the ``voiceauth`` command tree with each command's help.

``benchmarks/results/`` is published under the same path, so pages link to the results files themselves. Everything
works offline (no CDN, no network).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
MARKERS = ("http-api", "settings", "cli")


@functools.lru_cache(maxsize=1)
def openapi_schema() -> dict[str, Any]:
    """The OpenAPI schema of the real app, built on a throwaway embedded store with a throwaway data key."""
    from voiceauth.api.main import create_app
    from voiceauth.config import Settings

    with tempfile.TemporaryDirectory(prefix="voiceauth-docs-") as home:
        key = base64.b64encode(os.urandom(32)).decode()
        settings = Settings(home=Path(home), data_key=key, generate_data_key=False)  # type: ignore[arg-type]
        app = create_app(settings)
        try:
            return app.openapi()
        finally:
            app.state.services.close()


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[`{name}`](#{_anchor(name)})"
    for combo in ("anyOf", "oneOf", "allOf"):
        if combo in schema:
            return " or ".join(_type(s) for s in schema[combo])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return kind + ": " + ", ".join(f"`{v}`" for v in schema["enum"])
    if schema.get("format") == "binary":
        return "file"
    return str(kind)


def _anchor(name: str) -> str:
    return "schema-" + "".join(c if c.isalnum() else "-" for c in name.lower())


def render_http_api(schema: dict[str, Any]) -> str:
    """Markdown for every operation (parameters, body, responses) and every component schema."""
    out: list[str] = [
        f"Generated from the OpenAPI schema of voiceauth {schema['info']['version']} "
        f"(OpenAPI {schema['openapi']}; [download it](openapi.json)).",
        "",
    ]
    tags: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            tags.setdefault((op.get("tags") or ["other"])[0], []).append((method.upper(), path, op))
    for tag, ops in tags.items():
        out += [f"## {tag}", ""]
        for method, path, op in ops:
            out += [f"### `{method} {path}`", ""]
            summary = op.get("description") or op.get("summary") or ""
            if summary:
                out += [summary.strip(), ""]
            params = op.get("parameters", [])
            if params:
                out += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
                for p in params:
                    out.append(
                        f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}))} | "
                        f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description', ''))} |"
                    )
                out.append("")
            body = op.get("requestBody")
            if body:
                for ctype, media in body.get("content", {}).items():
                    out += [f"Request body (`{ctype}`): {_type(media.get('schema', {}))}", ""]
            out += ["| status | meaning | body |", "|---|---|---|"]
            for status, resp in op.get("responses", {}).items():
                content = resp.get("content", {})
                kinds = ", ".join(
                    f"`{c}` {_type(m.get('schema', {}))}" if m.get("schema") else f"`{c}`" for c, m in content.items()
                )
                out.append(f"| {status} | {_cell(resp.get('description', ''))} | {kinds} |")
            out.append("")
    out += ["## Schemas", ""]
    for name, comp in schema.get("components", {}).get("schemas", {}).items():
        out += [f"### {name} {{#{_anchor(name)}}}", ""]
        if comp.get("description"):
            out += [_cell(comp["description"]), ""]
        props = comp.get("properties", {})
        if props:
            required = set(comp.get("required", []))
            out += ["| field | type | required | description |", "|---|---|---|---|"]
            for field, sub in props.items():
                out.append(
                    f"| `{field}` | {_type(sub)} | {'yes' if field in required else 'no'} | "
                    f"{_cell(sub.get('description', ''))} |"
                )
            out.append("")
        elif "enum" in comp:
            out += [_type(comp), ""]
    return "\n".join(out)


def render_settings() -> str:
    """Every ``Settings`` field as its environment variable, default and description."""
    from voiceauth.config import Settings

    prefix = str(Settings.model_config.get("env_prefix", "VOICEAUTH_")).upper()
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            default = "(computed)"
        elif field.default is None:
            default = "unset"
        else:
            default = f"`{field.default}`"
        choices = _literal_choices(field.annotation)
        meaning = (field.description or "") + (f" One of: {', '.join(f'`{c}`' for c in choices)}." if choices else "")
        rows.append(f"| `{prefix}{name.upper()}` | {_cell(default)} | {_cell(meaning)} |")
    return "\n".join(rows)


def _literal_choices(annotation: Any) -> list[str]:
    """The values of a ``Literal[...]`` annotation (also inside ``X | None``), else []."""
    import typing

    if typing.get_origin(annotation) is typing.Literal:
        return [str(a) for a in typing.get_args(annotation)]
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Literal:
            return [str(a) for a in typing.get_args(arg)]
    return []


def render_cli() -> str:
    """The ``voiceauth`` command tree: one section per command with its usage line and options."""
    import typer

    from voiceauth.cli import app

    root = typer.main.get_command(app)  # a click command (typer may carry its own copy of click)
    out: list[str] = []

    def walk(cmd: Any, words: list[str]) -> None:
        if hasattr(cmd, "commands"):
            for name in sorted(cmd.commands):
                walk(cmd.commands[name], [*words, name])
            return
        ctx = cmd.context_class(cmd, info_name=" ".join(words))
        out.extend([f"### `{' '.join(words)}`", ""])
        if cmd.help:
            out.extend([" ".join(cmd.help.split("\n\n")[0].split()), ""])
        out.extend(["```text", " ".join(cmd.collect_usage_pieces(ctx)).join([f"{' '.join(words)} ", ""]), "```", ""])
        rows = []
        for param in cmd.params:
            record = param.get_help_record(ctx)
            if record is None:
                continue
            rows.append(f"| `{_cell(record[0])}` | {_cell(record[1])} |")
        if rows:
            out.extend(["| option | meaning |", "|---|---|", *rows, ""])

    walk(root, ["voiceauth"])
    return "\n".join(out)


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File, InclusionLevel

    for path in sorted(RESULTS.glob("*")):
        if path.is_file() and path.suffix in (".md", ".json", ".png"):
            files.append(
                File.generated(
                    config,
                    f"benchmarks/results/{path.name}",
                    abs_src_path=str(path),
                    inclusion=InclusionLevel.NOT_IN_NAV,
                )
            )
    files.append(File.generated(config, "reference/openapi.json", content=json.dumps(openapi_schema(), indent=2)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    renderers = {"http-api": lambda: render_http_api(openapi_schema()), "settings": render_settings, "cli": render_cli}
    for marker in MARKERS:
        tag = f"<!-- generated: {marker} -->"
        if tag in markdown:
            markdown = markdown.replace(tag, renderers[marker]())
    return markdown
