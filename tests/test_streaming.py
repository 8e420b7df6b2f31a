"""The streaming verifier's logic: when it asks for a decision, how often it embeds, and that decisions go through
the same verifier (attempts, lockout) as uploads. A stub engine returns chosen vectors, so the score is controlled;
the audio is the bundled FSDD samples (real speech for the VAD)."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voiceauth.audio.codecs import mulaw_encode
from voiceauth.audio.stream import StreamingFrontEnd
from voiceauth.config import Settings
from voiceauth.embedding.base import FloatArray
from voiceauth.pipeline import Pipeline
from voiceauth.scoring.base import CosineScorer
from voiceauth.store.models import VerificationAttempt
from voiceauth.streaming import StreamingPolicy, StreamingVerifier, public_decision
from voiceauth.verification import Decision
from voiceauth.watchlist import COSINE_OPERATING_POINTS

SAMPLES = Path(__file__).resolve().parents[1] / "audio_samples"
TENANT = "acme"


def _unit(v: np.ndarray) -> FloatArray:
    return (v / np.linalg.norm(v)).astype(np.float32)


E0 = _unit(np.eye(192)[0])
E_ORTHO = _unit(np.eye(192)[1])  # cosine 0 -> 50 points: far below the 80 threshold
E_NEAR = _unit(np.cos(1.0) * np.eye(192)[0] + np.sin(1.0) * np.eye(192)[1])  # cosine 0.54 -> 77: undecided


class StubEngine:
    dim, precision, device = 192, "fp32", "cpu"

    def __init__(self, vec: FloatArray) -> None:
        self.vec, self.calls = vec, 0

    def embed(self, wav: FloatArray, sample_rate: int, *, telephone: bool = False) -> FloatArray:
        self.calls += 1
        return self.vec

    def embed_batch(self, wavs: list[FloatArray], sample_rate: int, *, telephone: bool = False) -> FloatArray:
        return np.stack([self.embed(w, sample_rate) for w in wavs])


@pytest.fixture()
def pipe(tmp_path: Path) -> Pipeline:
    settings = Settings(home=tmp_path, scoring_backend="cosine", enroll_min_speech_s=3.0)
    p = Pipeline.from_settings(
        settings, engine=StubEngine(E0), scorer=CosineScorer(), operating_points=COSINE_OPERATING_POINTS
    )
    p.register(TENANT, "george", consent_method="test", consent_text_version="v1", actor="test")
    speech, rate = _speech("george")
    assert p.frontend is not None
    assert p.enroll(TENANT, "george", p.frontend.from_samples(speech, rate), actor="test").enrolled  # type: ignore[attr-defined]
    return p


def _speech(speaker: str) -> tuple[np.ndarray, int]:
    parts = [sf.read(SAMPLES / f"{speaker}_{k}.wav", dtype="float32") for k in "abc"]
    return np.concatenate([p[0] for p in parts]), parts[0][1]


def _run(pipe: Pipeline, vec: FloatArray, audio: np.ndarray, *, ref: str = "george", call_id: str = "c1", **pol):  # type: ignore[no-untyped-def]
    engine = StubEngine(vec)
    policy = StreamingPolicy(**{"min_speech_s": 3.0, "embed_every_s": 0.5, "max_speech_s": 8.0, **pol})
    fe = StreamingFrontEnd(Settings(), sample_rate=8000, fmt="mulaw")
    sv = StreamingVerifier(
        frontend=fe,
        engine=engine,
        verifier=pipe.verifier,
        tenant=TENANT,
        speaker_ref=ref,
        call_id=call_id,
        policy=policy,
    )
    data = mulaw_encode(audio)
    decided = None
    for i in range(0, len(data), 800):  # 100 ms blocks, as the IVR session feeds them
        decided = sv.feed(data[i : i + 800])
        if decided is not None:
            break
    return (decided or sv.finish()), sv, engine


def test_early_accept_at_the_first_evaluation(pipe: Pipeline) -> None:
    audio, _ = _speech("jackson")
    d, sv, engine = _run(pipe, E0, audio)
    assert d.decision == Decision.ACCEPT and d.early
    assert engine.calls == 1 and 3.0 <= d.speech_seconds < 3.6
    assert d.decided_at_ms < len(audio) / 8  # before the audio ended
    assert sv.feed(mulaw_encode(audio[:160])) is None  # nothing after a decision


def test_early_reject_when_clearly_below(pipe: Pipeline) -> None:
    d, _, engine = _run(pipe, E_ORTHO, _speech("jackson")[0])
    assert d.decision == Decision.REJECT and d.early and engine.calls == 1


def test_undecided_score_re_embeds_at_a_bounded_cadence_until_max_speech(pipe: Pipeline) -> None:
    audio = np.concatenate([_speech("jackson")[0], _speech("lucas")[0]])
    d, _, engine = _run(pipe, E_NEAR, audio)
    assert d.decision == Decision.REJECT and d.early
    assert d.speech_seconds >= 8.0
    # one embedding at 3 s, then one per 0.5 s of new speech (VAD adds speech in steps, so allow one extra)
    assert 2 <= engine.calls <= (d.speech_seconds - 3.0) / 0.5 + 2


def test_too_little_speech_is_not_enough_speech_at_the_end(pipe: Pipeline) -> None:
    audio = np.concatenate([np.zeros(8000 * 2, np.float32), _speech("jackson")[0][: 8000 * 1]])
    d, _, engine = _run(pipe, E0, audio)
    assert d.decision == Decision.NOT_ENOUGH_SPEECH and not d.early and engine.calls == 0


def test_unknown_speaker_decides_like_a_mismatch(pipe: Pipeline) -> None:
    audio = _speech("jackson")[0]
    mismatch, _, e1 = _run(pipe, E_ORTHO, audio, call_id="m")
    unknown, _, e2 = _run(pipe, E0, audio, ref="nobody", call_id="u")
    assert unknown.decision == Decision.NOT_ENROLLED and unknown.public == "REJECT"
    assert unknown.decided_at_ms == mismatch.decided_at_ms and e1.calls == e2.calls == 1
    silent, _, _ = _run(pipe, E0, np.zeros(8000 * 2, np.float32), ref="nobody", call_id="s")
    assert silent.public == "NOT_ENOUGH_SPEECH"  # as an enrolled caller with no speech


def test_decisions_are_recorded_and_count_towards_lockout(pipe: Pipeline) -> None:
    audio = _speech("jackson")[0]
    decisions = [_run(pipe, E_ORTHO, audio, call_id=f"c{i}")[0].decision for i in range(6)]
    assert decisions[:5] == [Decision.REJECT] * 5 and decisions[5] == Decision.LOCKED_OUT
    assert pipe.store.count_rows(VerificationAttempt, call_id="c0") == 1
    with pipe.store.transaction() as tx:
        spk = tx.speaker(tx.tenant(TENANT).id, "george")
        assert spk is not None and tx.lockout(spk).locked_until is not None
        assert tx.lockout(spk).locked_until > tx.clock() - dt.timedelta(seconds=1)


def test_public_decision_hides_enrolment() -> None:
    assert public_decision("NOT_ENROLLED") == "REJECT"
    assert public_decision("NOT_ENROLLED", speech_s=1.0, min_speech_s=3.0) == "NOT_ENOUGH_SPEECH"
    assert public_decision("LOCKED_OUT") == "LOCKED_OUT"


def test_policy_validates_its_numbers() -> None:
    from voiceauth.errors import ConfigError

    with pytest.raises(ConfigError, match="embed_every_s"):
        StreamingPolicy(embed_every_s=0)
    with pytest.raises(ConfigError, match="max_speech_s"):
        StreamingPolicy(min_speech_s=5, max_speech_s=4)


def test_blocks_sized_by_the_speech_still_needed_decide_at_the_same_point(pipe: Pipeline) -> None:
    """The IVR feeds up to 1 s at a time while an evaluation is far (speech_to_next_evaluation_s): the decision
    comes with the same speech and at the same point of the call as with 100 ms blocks, with far fewer feeds."""
    audio = np.concatenate([_speech("jackson")[0], _speech("lucas")[0]])
    for vec in (E0, E_NEAR):
        small, _, _ = _run(pipe, vec, audio, call_id="small")
        fe = StreamingFrontEnd(Settings(), sample_rate=8000, fmt="mulaw")
        sv = StreamingVerifier(
            frontend=fe,
            engine=StubEngine(vec),
            verifier=pipe.verifier,
            tenant=TENANT,
            speaker_ref="george",
            call_id="planned",
            policy=StreamingPolicy(min_speech_s=3.0, embed_every_s=0.5, max_speech_s=8.0),
        )
        data, pos, feeds, decided = mulaw_encode(audio), 0, 0, None
        while pos < len(data) and decided is None:
            block_s = max(0.1, min(1.0, sv.speech_to_next_evaluation_s - 0.15))
            n = int(round(block_s * 10)) * 800  # whole 100 ms blocks, as the session asks for them
            decided, pos, feeds = sv.feed(data[pos : pos + n]), pos + n, feeds + 1
        assert decided is not None and sv.speech_to_next_evaluation_s == float("inf")
        assert decided.decision == small.decision
        assert abs(decided.speech_seconds - small.speech_seconds) < 0.11
        assert abs(decided.decided_at_ms - small.decided_at_ms) <= 100
        assert feeds < small.decided_at_ms / 100 / 2  # at most half as many feeds as 100 ms blocks


def test_a_voiceprint_of_another_network_is_expired_at_the_first_evaluation(pipe: Pipeline) -> None:
    """george was enrolled by the released network; the service now runs the telephone-adapted one. Even a probe
    identical to the stored voiceprint is not scored: the call decides EXPIRED at the first evaluation."""
    pipe.verifier.space = "tel-0123abcd"
    d, _, engine = _run(pipe, E0, _speech("jackson")[0], call_id="stale")
    assert d.decision == Decision.EXPIRED and d.early and d.result.score is None
    assert engine.calls == 1 and 3.0 <= d.speech_seconds < 3.6  # no re-embedding while waiting for confidence


class CountingRecognizer:
    """Hears the digits it is told to (the recogniser's accuracy is ``python -m benchmarks digits``'s business)."""

    def __init__(self, digits: str) -> None:
        self.digits, self.calls, self.sizes, self.threads = digits, 0, [], []

    def recognize(self, speech: FloatArray, sample_rate: int, n_digits: int):  # type: ignore[no-untyped-def]
        from voiceauth.liveness.recognizer import Heard

        self.calls += 1
        self.sizes.append(speech.size)
        self.threads.append(threading.get_ident())
        return Heard(self.digits)


def _answer(  # type: ignore[no-untyped-def]
    pipe: Pipeline, audio: np.ndarray, *, planned: bool, call_id: str, preparer: Executor | None = None
):
    """A challenge answer fed as the IVR does (blocks sized by ``speech_to_next_evaluation_s``, or 100 ms blocks),
    ended by ``answer_ended``: (decision, verifier, engine, recogniser, recogniser and engine calls at the end)."""
    ch = pipe.issue_challenge(TENANT, "george", call_id=call_id, actor="test", n_digits=5)
    engine, rec = StubEngine(E0), CountingRecognizer(ch.digits)
    sv = StreamingVerifier(
        frontend=StreamingFrontEnd(Settings(), sample_rate=8000, fmt="mulaw"),
        engine=engine,
        verifier=pipe.verifier,
        tenant=TENANT,
        speaker_ref="george",
        call_id=call_id,
        policy=StreamingPolicy(min_speech_s=3.0, embed_every_s=0.5, max_speech_s=8.0),
        challenge_id=ch.challenge_id,
        challenge_digits=5,
        recognizer=rec,
        answer_end_silence_ms=1200,
        preparer=preparer,
    )
    data, pos, feeds = mulaw_encode(audio), 0, 0
    while pos < len(data) and not sv.answer_ended():
        block_s = max(0.1, min(1.0, sv.speech_to_next_evaluation_s - 0.15)) if planned else 0.1
        n = int(round(block_s * 10)) * 800
        assert sv.feed(data[pos : pos + n]) is None  # a challenge answer is never decided early
        pos, feeds = pos + n, feeds + 1
    assert sv.answer_ended(), "the answer's closing silence was never found"
    before = (rec.calls, engine.calls)
    return sv.finish(), sv, feeds, before, (rec.calls, engine.calls)


def test_a_challenge_answer_is_prepared_during_its_closing_silence_and_decided_at_its_end(pipe: Pipeline) -> None:
    """The recognition and the embedding run once, half way through the closing silence; the decision at its end
    reuses them (only scoring on the decision's path). Blocks sized by the audio still needed end the answer at the
    same point as 100 ms blocks, with far fewer feeds."""
    speech = _speech("jackson")[0][: int(4.5 * 8000)]  # under max_speech_s: ended by its silence
    audio = np.concatenate([speech, np.zeros(3 * 8000, np.float32)])
    small, _, small_feeds, _, _ = _answer(pipe, audio, planned=False, call_id="small")
    d, sv, feeds, before, after = _answer(pipe, audio, planned=True, call_id="planned")
    for decided in (small, d):
        assert decided.decision == Decision.ACCEPT and not decided.early
    assert before == after == (1, 1) and sv.preparations == 1  # nothing recomputed at the decision
    assert sv.heard is not None and len(sv.heard) == 5
    end_ms = len(speech) / 8  # the answer's speech ends within the recording; the decision follows its silence
    assert 1200 <= d.decided_at_ms - (end_ms - 1000) and d.decided_at_ms < end_ms + 1200 + 400
    assert abs(d.decided_at_ms - small.decided_at_ms) <= 300
    assert feeds < small_feeds / 2


def test_a_preparation_on_a_background_executor_gives_the_same_decision_from_one_recognition(pipe: Pipeline) -> None:
    """With a preparer (the IVR's low-priority threads) the answer is recognised and embedded there, once, on a copy
    of its audio while the call keeps feeding silence; the decision waits for it and equals the inline one."""
    speech = _speech("jackson")[0][: int(4.5 * 8000)]
    audio = np.concatenate([speech, np.zeros(3 * 8000, np.float32)])
    inline, _, _, _, _ = _answer(pipe, audio, planned=True, call_id="inline")
    with ThreadPoolExecutor(1) as preparer:
        d, sv, _, _, after = _answer(pipe, audio, planned=True, call_id="background", preparer=preparer)
    assert d.decision == inline.decision == Decision.ACCEPT
    assert d.decided_at_ms == inline.decided_at_ms and d.speech_seconds == inline.speech_seconds
    assert after == (1, 1) and sv.preparations == 1 and sv.evaluations == 1
    rec = sv.recognizer
    assert isinstance(rec, CountingRecognizer) and len(rec.threads) == 1 and rec.threads[0] != threading.get_ident()


def test_speech_after_a_long_pause_is_prepared_again_and_decided_on_the_whole_answer(pipe: Pipeline) -> None:
    """A caller who pauses (longer than half the closing silence) and says more: the early preparation is
    discarded, the decision uses the whole answer, recognised again."""
    a, b = _speech("jackson")[0][: 4 * 8000], _speech("lucas")[0][:8000]
    audio = np.concatenate([a, np.zeros(int(0.9 * 8000), np.float32), b, np.zeros(3 * 8000, np.float32)])
    d, sv, _, before, after = _answer(pipe, audio, planned=True, call_id="pause")
    assert d.decision == Decision.ACCEPT
    assert sv.preparations == 2 and before == after
    rec = sv.recognizer
    assert isinstance(rec, CountingRecognizer) and rec.sizes[1] > rec.sizes[0] + 0.9 * 16000  # the whole answer
