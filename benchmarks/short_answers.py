"""Streamed short answers: when does a call decide, and do impostors ever get in? ``python -m benchmarks.short_answers``

Every FSDD speaker is enrolled from two takes of "0123456789" (recordings 0 and 1). Each call is one digit string
of new recordings (takes ``--first-take`` on, never enrolled), 8 kHz mu-law in 100 ms blocks as the IVR feeds it,
through :class:`voiceauth.streaming.StreamingVerifier` with the real engine and the shipped scorer; every call is
streamed once as its own speaker (genuine) and once against each other speaker's voiceprint (impostor). The same
calls run under two policies in the same run: the shipped one (first evaluation at ``verify_min_speech_s``, 2 s)
and the one before issue 18 (first evaluation at 3 s); otherwise identical (re-evaluation every 0.5 s, early
ACCEPT at ``high_security``, early REJECT 15 points below, decision by 8 s).

Reported per policy: genuine ACCEPT rate, median (and quartiles of) net speech at the decision of genuine
ACCEPTs, share of genuine calls decided at the first evaluation, impostor ACCEPTs (false accepts) out of all
impostor calls. The countermeasure and the replay check are off here (each recording is reused against every
voiceprint on purpose); they are measured by ``benchmarks.streaming_latency`` and ``benchmarks.antispoof``.
Writes ``benchmarks/results/short_answers.{md,json}`` (CPU named). About 5 min on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.measure import cpu_summary
from benchmarks.streaming_latency import FSDD, SPEAKERS, digits

ROOT = Path(__file__).resolve().parents[1]
TENANT = "short"
CALL_STRINGS = ("31415926", "27182818", "16180339", "14142135", "57721566", "69314718")


def _level(x: np.ndarray, dbfs: float = -23.0) -> np.ndarray:
    """The recording at ``dbfs`` RMS (a phone network's level control; FSDD's theo is recorded ~20 dB quieter than
    the others, and the front end rightly calls his raw recordings TOO_QUIET)."""
    rms = float(np.sqrt(np.mean(np.square(x)))) or 1.0
    out: np.ndarray = np.clip(x * (10 ** (dbfs / 20) / rms), -1.0, 1.0).astype(np.float32)
    return out


def _pipeline(home: Path) -> Any:
    from voiceauth.audio.frontend import FrontEnd
    from voiceauth.config import Settings
    from voiceauth.pipeline import Pipeline

    settings = Settings(
        home=home,
        scoring_backend="cohort",
        antispoof_mode="off",
        replay_check=False,
        enroll_min_speech_s=6.0,
        lockout_failures=1_000_000,  # impostor after impostor must not lock a voiceprint mid-benchmark
        lockout_disable_failures=1_000_001,
    )
    pipe = Pipeline.from_settings(settings)
    frontend = FrontEnd(settings)
    for who in SPEAKERS:
        pipe.register(TENANT, who, consent_method="bench", consent_text_version="v1", actor="bench")
        enrol = _level(np.concatenate([digits(who, "0123456789", i) for i in (0, 1)]))
        res = pipe.enroll(TENANT, who, frontend.from_samples(enrol, 8000), actor="bench")
        if not res.enrolled:
            raise RuntimeError(f"enrolment of {who} failed: {res}")
    return settings, pipe


def _stream(settings: Any, pipe: Any, claimed: str, audio: np.ndarray, policy: Any) -> tuple[str, float, int]:
    """(decision, net speech at the decision, evaluations) of one streamed call."""
    from voiceauth.audio.codecs import mulaw_encode
    from voiceauth.audio.stream import StreamingFrontEnd
    from voiceauth.streaming import StreamingVerifier

    sv = StreamingVerifier(
        frontend=StreamingFrontEnd(settings, sample_rate=8000, fmt="mulaw"),
        engine=pipe.engine,
        verifier=pipe.verifier,
        tenant=TENANT,
        speaker_ref=claimed,
        policy=policy,
    )
    data, decided = mulaw_encode(audio), None
    for i in range(0, len(data), 800):
        decided = sv.feed(data[i : i + 800])
        if decided is not None:
            break
    decided = decided or sv.finish()
    return decided.decision.value, float(decided.speech_seconds), int(sv.evaluations)


def summarise(calls: Sequence[dict[str, Any]], first_eval_s: float) -> dict[str, Any]:
    """Rates and speech-at-decision figures of one policy's calls (pure)."""
    genuine = [c for c in calls if c["genuine"]]
    impostor = [c for c in calls if not c["genuine"]]
    accepted = [c["speech_s"] for c in genuine if c["decision"] == "ACCEPT"]
    q = np.percentile(accepted, [25, 50, 75]).tolist() if accepted else [float("nan")] * 3
    return {
        "first_evaluation_s": first_eval_s,
        "genuine_calls": len(genuine),
        "genuine_accept_rate": len(accepted) / len(genuine) if genuine else float("nan"),
        "genuine_decisions": {
            d: sum(c["decision"] == d for c in genuine) for d in sorted({c["decision"] for c in genuine})
        },
        "median_speech_at_accept_s": q[1],
        "speech_at_accept_quartiles_s": [q[0], q[2]],
        "genuine_decided_at_first_evaluation": sum(c["evaluations"] == 1 for c in genuine) / len(genuine)
        if genuine
        else float("nan"),
        "accepted_within_2_5_s": sum(s <= 2.5 for s in accepted) / len(genuine) if genuine else float("nan"),
        "impostor_calls": len(impostor),
        "false_accepts": sum(c["decision"] == "ACCEPT" for c in impostor),
        "impostor_decisions": {
            d: sum(c["decision"] == d for c in impostor) for d in sorted({c["decision"] for c in impostor})
        },
    }


def report(record: dict[str, Any]) -> str:
    lines = [
        "# Streamed short answers: speech at the decision, and false accepts",
        "",
        f"CPU: {record['cpu']}. Command: `{record['command']}` ({record['seconds']:.0f} s).",
        "",
        f"{record['genuine_calls']} genuine and {record['impostor_calls']} impostor calls per policy: FSDD digit"
        f" strings of 8 digits (recordings {record['takes'][0]}-{record['takes'][1]} of each of the 6 speakers, never"
        " enrolled), 8 kHz mu-law in 100 ms blocks, each streamed against its own voiceprint and every other"
        " one; levels set to -23 dBFS; real engine, shipped scorer, decisions at `high_security`; countermeasure"
        " and replay check off.",
        "",
        "| first evaluation | genuine ACCEPT | median speech at ACCEPT (s) | quartiles (s) | decided at first "
        "evaluation | ACCEPT within 2.5 s | false accepts |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in record["policies"]:
        lines.append(
            f"| {p['first_evaluation_s']:g} s | {100 * p['genuine_accept_rate']:.1f}% | "
            f"{p['median_speech_at_accept_s']:.2f} | {p['speech_at_accept_quartiles_s'][0]:.2f}-"
            f"{p['speech_at_accept_quartiles_s'][1]:.2f} | {100 * p['genuine_decided_at_first_evaluation']:.0f}% | "
            f"{100 * p['accepted_within_2_5_s']:.0f}% | {p['false_accepts']} / {p['impostor_calls']} |"
        )
    lines += [
        "",
        "Genuine decisions: "
        + "; ".join(f"{p['first_evaluation_s']:g} s: {p['genuine_decisions']}" for p in record["policies"]),
        "Impostor decisions: "
        + "; ".join(f"{p['first_evaluation_s']:g} s: {p['impostor_decisions']}" for p in record["policies"]),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--first-take", type=int, default=30, help="First FSDD recording index used for calls.")
    ap.add_argument("--takes", type=int, default=6, help="Calls per speaker (one recording index each).")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    if not FSDD.is_dir():
        raise SystemExit(f"FSDD is not at {FSDD}; this benchmark needs ../shared/data/fsdd")
    last = args.first_take + args.takes - 1
    if args.first_take < 2 or last > 49:
        raise SystemExit(f"takes {args.first_take}-{last}: use recordings 2-49 (0 and 1 enrol)")
    from voiceauth.streaming import StreamingPolicy

    t0 = time.time()
    settings, pipe = _pipeline(Path(tempfile.mkdtemp()))
    shipped = StreamingPolicy.from_settings(settings)
    before = StreamingPolicy(
        min_speech_s=3.0,
        embed_every_s=shipped.embed_every_s,
        max_speech_s=shipped.max_speech_s,
        accept_margin=shipped.accept_margin,
        reject_margin=shipped.reject_margin,
    )
    policies: list[dict[str, Any]] = []
    for policy in (shipped, before):
        calls: list[dict[str, Any]] = []
        for speaker in SPEAKERS:
            for k in range(args.takes):
                take = args.first_take + k
                audio = _level(digits(speaker, CALL_STRINGS[k % len(CALL_STRINGS)], take))
                for claimed in SPEAKERS:
                    decision, speech_s, evals = _stream(settings, pipe, claimed, audio, policy)
                    calls.append(
                        {
                            "speaker": speaker,
                            "claimed": claimed,
                            "take": take,
                            "genuine": speaker == claimed,
                            "decision": decision,
                            "speech_s": speech_s,
                            "evaluations": evals,
                        }
                    )
        summary = summarise(calls, policy.min_speech_s)
        print(json.dumps(summary), flush=True)
        policies.append({**summary, "calls": calls})
    record = {
        "command": " ".join(["python -m benchmarks.short_answers", *(sys.argv[1:] if argv is None else argv)]),
        "cpu": cpu_summary(),
        "seconds": time.time() - t0,
        "takes": [args.first_take, last],
        "genuine_calls": policies[0]["genuine_calls"],
        "impostor_calls": policies[0]["impostor_calls"],
        "policies": policies,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "short_answers.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    text = report(record)
    (args.out / "short_answers.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
