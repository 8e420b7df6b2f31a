"""Writing results: one JSON document, a Markdown table and two PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["markdown", "write_results"]


def _latency_rows(result: dict[str, Any]) -> list[str]:
    rows = []
    nan = float("nan")
    for length, per in result.get("latency", {}).items():
        for name, r in per.items():
            rows.append(
                f"| {length} | {name} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | "
                f"{r['speedup']:.2f}x | {r.get('cpu_p50_ms', nan):.1f} | {r.get('cpu_speedup', nan):.2f}x | "
                f"{r['cosine']:.5f} | {r['peak_rss_mb']:.0f} |"
            )
    return rows


def _accuracy_rows(acc: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Accuracy guard",
        "",
        f"Set: {acc['set']}; trials: {acc['trials']['target']} target, {acc['trials']['nontarget']} non-target.",
        "",
        "| backend | cosine min | cosine mean | EER | EER relative to fp32 reference |",
        "|---|---|---|---|---|",
    ]
    for name, r in acc["backends"].items():
        lines.append(
            f"| {name} | {r['cosine_min']:.5f} | {r['cosine_mean']:.5f} | {100 * r['eer']:.2f}% | "
            f"{100 * r['eer_rel_to_fp32']:+.1f}% |"
        )
    return lines


def markdown(result: dict[str, Any]) -> str:
    env = result["environment"]
    lines = [
        f"# Embedding benchmark ({env['device']}: {env.get('gpu', env['cpu'])})",
        "",
        f"Command: `{result['command']}`  ",
        f"Threads: {env['torch_threads']} of {env['cpu_count']} cores; 1-min load average at the end: "
        f"{env['load_avg_1m']}; ISA: {', '.join(env['cpu_isa']) or 'n/a'}  ",
        f"Versions: {', '.join(f'{k} {v}' for k, v in env['versions'].items())}  ",
        f"Production backend (`backend=auto`): **{result['production_backend']}**",
        "",
        "Speedup = SpeechBrain reference p50 / backend p50, measured in the same run (round-robin). CPU ms = process",
        "CPU time per call (with one thread: the work itself, insensitive to waiting for a core on a shared machine).",
        "",
        "## Latency, one utterance (8 kHz input)",
        "",
        "| length | backend | p50 ms | p95 ms | p99 ms | speedup | CPU ms p50 | CPU speedup | cosine to ref "
        "| peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *_latency_rows(result),
    ]
    if result.get("throughput"):
        lines += [
            "",
            "## Batch throughput (mixed lengths 2-8 s, 8 kHz)",
            "",
            "Audio s per CPU s: the work rate per busy core (process CPU time), which other jobs on a shared",
            "machine do not dilute; wall-clock audio s per s is what this process got.",
            "",
            "| backend | batch | audio s | wall s | utterances/s | audio s per s | CPU s | audio s per CPU s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        nan = float("nan")
        for name, rows in result["throughput"].items():
            for r in rows:
                lines.append(
                    f"| {name} | {r['batch']} | {r['audio_s']} | {r['wall_s']} | {r['utt_per_s']} | "
                    f"{r['audio_s_per_s']} | {r.get('cpu_s', nan)} | {r.get('audio_s_per_cpu_s', nan)} |"
                )
    for key in ("accuracy", "accuracy_telephone"):
        if result.get(key):
            lines += _accuracy_rows(result[key])
    if result.get("streaming") is None:
        lines += [
            "",
            "Streaming cost: not measured yet (hook: `benchmarks.measure`; issue for the streaming verifier).",
        ]
    return "\n".join(lines) + "\n"


def _plots(result: dict[str, Any], out_dir: Path, stem: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    lat = result.get("latency", {})
    if lat:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        lengths = [float(k.rstrip("s")) for k in lat]
        for name in next(iter(lat.values())):
            ax.plot(lengths, [lat[k][name]["p50_ms"] for k in lat], marker="o", label=name)
        ax.set_xlabel("utterance length (s)")
        ax.set_ylabel("p50 latency (ms)")
        ax.set_yscale("log")
        ax.set_title(f"Latency vs length ({result['environment']['device']})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        path = out_dir / f"{stem}_latency.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    thr = result.get("throughput", {})
    if thr:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name, rows in thr.items():
            ax.plot([r["batch"] for r in rows], [r["audio_s_per_s"] for r in rows], marker="o", label=name)
        ax.set_xlabel("batch size (mixed lengths)")
        ax.set_ylabel("seconds of audio embedded per second")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"Throughput vs batch ({result['environment']['device']})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        path = out_dir / f"{stem}_throughput.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def write_results(result: dict[str, Any], out_dir: Path, stem: str) -> list[Path]:
    """Write ``{stem}.json``, ``{stem}.md`` and the PNG plots into ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / f"{stem}.json"
    js.write_text(json.dumps(result, indent=2) + "\n")
    md = out_dir / f"{stem}.md"
    md.write_text(markdown(result))
    return [js, md, *_plots(result, out_dir, stem)]
