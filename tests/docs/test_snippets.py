"""Every shell snippet of the quick start (README.md and docs/quickstart.md) and of the Twilio, AudioHook and L16
pages runs against a real ``voiceauth serve`` and prints what the page shows (see tests/docs/snippets.py for the
page conventions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.conftest import ROOT, SERVER_ENV, DocsServer
from tests.docs.snippets import check, ellipsis_match, parse_page, run_page

pytestmark = pytest.mark.model

PAGES = [
    "README.md",
    "docs/quickstart.md",
    "docs/integrate/twilio.md",
    "docs/integrate/audiohook.md",
    "docs/integrate/l16.md",
]


@pytest.mark.parametrize("page", PAGES)
def test_page_snippets_give_the_answers_shown(
    page: str, docs_server: DocsServer, snippet_env: dict[str, str], workdir: Path
) -> None:
    parsed = parse_page(ROOT / page)
    assert len(parsed.commands) >= 3, f"{page}: expected its shell snippets, found {len(parsed.commands)} commands"
    assert any(c.expected for c in parsed.commands), f"{page}: no command shows its output"
    results = run_page(parsed, workdir, keys=docs_server.keys, port=docs_server.port, env=snippet_env)
    problems = check(results, docs_server.port)
    assert not problems, f"{page}:\n" + "\n\n".join(problems)


@pytest.mark.parametrize("page", [p for p in PAGES if "/integrate/" in p])
def test_integration_pages_name_the_setting_the_test_server_uses(page: str) -> None:
    text = (ROOT / page).read_text(encoding="utf-8")
    for name, value in SERVER_ENV.items():
        assert f"{name}={value}" in text, f"{page} no longer tells the reader to start with {name}={value}"


def test_skips_name_a_reason() -> None:
    for page in PAGES:
        for n, line in enumerate((ROOT / page).read_text(encoding="utf-8").splitlines(), 1):
            if "docs-test: skip" in line:
                assert "(" in line and ")" in line, f"{page}:{n}: a skipped snippet must say why"


def test_ellipsis_matching() -> None:
    assert ellipsis_match('{"decision":"ACCEPT"}', '{"decision":"ACCEPT"}')
    assert not ellipsis_match('{"decision":"ACCEPT"}', '{"decision":"REJECT"}')
    assert ellipsis_match('{"progress":22.4,...}', '{"progress":22.4,"enrolled":false}')
    assert not ellipsis_match('{"progress":22.4,...}', '{"progress":42.0,"enrolled":true}')
    assert ellipsis_match("call ... (twilio)\n... decision REJECT", "call CA1 (twilio)\n3.1 s  decision REJECT")
    assert not ellipsis_match("", "unexpected output")


def test_parser_reads_commands_expected_output_skips_and_files(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text(
        "<!-- docs-test: skip (not here) -->\n```bash\nmake run\n```\n\n"
        '```bash\nKEY=va_...   # the telephony key printed at start\ncurl -s a \\\n  -d b\n#  {"x": 1}\n'
        "# a comment\necho hi\n#  hi\n```\n\n"
        '```python title="c.py"\nprint(1)\n```\n\n```xml title="TwiML"\n<Response/>\n```\n',
        encoding="utf-8",
    )
    parsed = parse_page(page)
    assert parsed.skipped == 1
    assert [c.text for c in parsed.commands] == [
        "KEY=va_...   # the telephony key printed at start",
        "curl -s a \\\n  -d b",
        "echo hi",
    ]
    assert [c.expected for c in parsed.commands] == [[], ['{"x": 1}'], ["hi"]]
    assert list(parsed.files.values()) == [("c.py", "print(1)\n")]
