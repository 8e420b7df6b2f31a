"""Extract the shell snippets of a Markdown page and run them, comparing each command's output with the page.

Conventions on the tested pages (README.md, docs/quickstart.md, docs/integrate/{twilio,audiohook,l16}.md):

* every ```` ```bash ```` block runs, in page order, in one bash process per page (so variables carry over), in a
  scratch directory holding links to the repository's ``.venv`` and ``audio_samples`` (commands read as they would
  from the repository root); a block right after ``<!-- docs-test: skip (reason) -->`` does not run;
* lines ``#  text`` (hash, two spaces) right after a command are its expected output, ``...`` matching anything
  (as doctest's ELLIPSIS); a command with none must print nothing; every command must exit 0;
* ``NAME=va_...   # the telephony key printed at start`` (also with ``export``) is given the real key of that role;
* ``127.0.0.1:8000`` is the service under test (its real port is substituted in commands and expected output);
* a block titled with a file name (```` ```python title="l16_call.py" ````) is written to that file in the scratch
  directory before the page runs (with the port substituted).
"""

from __future__ import annotations

import re
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Command", "Page", "ellipsis_match", "parse_page", "run_page"]

_FENCE = re.compile(r"^```(\w+)?(?:\s+title=\"([^\"]+)\")?\s*$")
_SKIP = re.compile(r"^<!--\s*docs-test:\s*skip\b.*-->\s*$")
_FILE_TITLE = re.compile(r"^[\w.-]+\.\w+$")
_KEY_LINE = re.compile(r"^(export\s+)?([A-Z_]+)=va_\.\.\.\s+#.*\b(telephony|security|admin) key\b")


@dataclass
class Command:
    text: str  # the command as typed (continuation lines joined with their backslashes)
    expected: list[str] = field(default_factory=list)
    line: int = 0  # 1-based line on the page


@dataclass
class Page:
    path: Path
    commands: list[Command]  # in page order; file blocks are commands that write a file
    files: dict[int, tuple[str, str]] = field(default_factory=dict)  # commands before it -> (name, content)
    skipped: int = 0


def parse_page(path: Path) -> Page:
    lines = path.read_text(encoding="utf-8").splitlines()
    page = Page(path, [])
    i = 0
    skip_next = False
    while i < len(lines):
        line = lines[i]
        if _SKIP.match(line.strip()):
            skip_next = True
            i += 1
            continue
        m = _FENCE.match(line)
        if not m or line.strip() == "```":
            if line.strip():
                skip_next = False
            i += 1
            continue
        lang, title = m.group(1) or "", m.group(2)
        start = i + 1
        j = start
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        body = lines[start:j]
        i = j + 1
        if skip_next:
            page.skipped += 1
            skip_next = False
            continue
        if title and _FILE_TITLE.match(title):
            page.files[len(page.commands)] = (title, "\n".join(body) + "\n")
        elif lang == "bash":
            page.commands.extend(_commands(body, start + 1))
    return page


def _commands(body: list[str], first_line: int) -> list[Command]:
    out: list[Command] = []
    k = 0
    while k < len(body):
        raw = body[k]
        if not raw.strip():
            k += 1
            continue
        if raw.startswith("#  ") or raw == "#":
            if not out:
                raise ValueError(f"line {first_line + k}: expected output before any command")
            out[-1].expected.append(raw[3:])
            k += 1
            continue
        if raw.lstrip().startswith("#"):
            k += 1  # a comment line
            continue
        cmd = Command(raw, line=first_line + k)
        while cmd.text.endswith("\\") and k + 1 < len(body):
            k += 1
            cmd.text += "\n" + body[k]
        out.append(cmd)
        k += 1
    return out


def ellipsis_match(expected: str, actual: str) -> bool:
    """doctest's ELLIPSIS: ``...`` in ``expected`` matches any text (newlines too); the rest must be equal."""
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual, flags=re.S) is not None


def _normalise(text: str) -> str:
    return "\n".join(ln.strip() for ln in text.strip().splitlines() if ln.strip())


def _with_keys(text: str, keys: dict[str, str]) -> str:
    m = _KEY_LINE.match(text)
    if m is None:
        return text
    return f"{m.group(1) or ''}{m.group(2)}={keys[m.group(3)]}"


@dataclass
class Result:
    command: Command
    output: str
    status: int


def run_page(
    page: Page, workdir: Path, *, keys: dict[str, str], port: int, env: dict[str, str], timeout_s: float = 300.0
) -> list[Result]:
    """Run the page's commands in one bash process; return each command's output and exit status."""
    base = "127.0.0.1:8000"
    marker = f"__docs_{uuid.uuid4().hex}__"
    script: list[str] = []
    for name, content in page.files.values():
        (workdir / name).write_text(content.replace(base, f"127.0.0.1:{port}"), encoding="utf-8")
    for cmd in page.commands:
        text = _with_keys(cmd.text, keys).replace(base, f"127.0.0.1:{port}")
        script.append(f"{{ {text}\n}} 2>&1\necho; echo {marker} $?")
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc"],
        input="\n".join(script) + "\n",
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    chunks = re.split(rf"\n?{marker} (\d+)\n", proc.stdout)
    results: list[Result] = []
    for n, cmd in enumerate(page.commands):
        if 2 * n + 1 >= len(chunks):
            results.append(Result(cmd, f"(no output: the shell stopped)\nstderr:\n{proc.stderr[-3000:]}", -1))
            continue
        results.append(Result(cmd, chunks[2 * n], int(chunks[2 * n + 1])))
    return results


def check(results: list[Result], port: int) -> list[str]:
    """Problems: a non-zero exit, or output that differs from the page."""
    problems: list[str] = []
    for r in results:
        expected = _normalise("\n".join(r.command.expected).replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
        actual = _normalise(r.output)
        if r.status != 0:
            problems.append(f"line {r.command.line}: `{r.command.text}` exited {r.status}:\n{r.output}")
        elif not ellipsis_match(expected, actual):
            problems.append(
                f"line {r.command.line}: `{r.command.text}`\n  page shows: {expected!r}\n  service gave: {actual!r}"
            )
    return problems
