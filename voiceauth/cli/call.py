"""``voiceauth call simulate`` (play a WAV into a running service over a telephony protocol) and ``voiceauth mic``
(stream the default microphone to /v1/streams/l16; needs the optional ``mic`` extra, pyaudio)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import sys
from pathlib import Path

import numpy as np
import typer

from voiceauth.cli._common import user_errors
from voiceauth.errors import ConfigError

__all__ = ["register"]

call_app = typer.Typer(help="Simulated calls into a running voiceauth service.", no_args_is_help=True)


@call_app.command("simulate")
def simulate(
    protocol: str = typer.Option(..., "--protocol", help="twilio | audiohook | l16"),
    audio: Path | None = typer.Option(
        None, "--audio", exists=True, dir_okay=False, help="WAV/FLAC of the caller (not with --say-digits)."
    ),
    speaker: str = typer.Option(..., "--speaker", help="The claimed customer reference."),
    dtmf: str = typer.Option("", "--dtmf", help="Digits to press after speaking (e.g. a PIN)."),
    url: str = typer.Option("ws://127.0.0.1:8000", "--url", help="Service base URL (ws:// or wss://)."),
    speed: float = typer.Option(1.0, "--speed", help="1 = real time, 2 = twice as fast, 0 = as fast as possible."),
    api_key: str = typer.Option(
        "", "--api-key", envvar="VOICEAUTH_API_KEY", help="telephony API key (AudioHook, L16)."
    ),
    audiohook_secret: str = typer.Option(
        "", "--audiohook-secret", envvar="VOICEAUTH_AUDIOHOOK_SECRET", help="Base64 client secret to sign with."
    ),
    tenant: str = typer.Option("", "--tenant", help="Twilio: the tenant (/v1/streams/twilio/TENANT); else the alias."),
    twilio_auth_token: str = typer.Option(
        "", "--twilio-auth-token", envvar="VOICEAUTH_SIM_TWILIO_AUTH_TOKEN", help="Twilio: sign the handshake with it."
    ),
    say_digits: str = typer.Option(
        "",
        "--say-digits",
        help="Liveness: answer each digit challenge with FSDD recordings saying the digits asked (match) or other"
        " digits (wrong).",
    ),
    fsdd: Path = typer.Option(Path("../shared/data/fsdd"), "--fsdd", help="FSDD folder for --say-digits."),
    fsdd_speaker: str = typer.Option("george", "--fsdd-speaker", help="FSDD speaker who answers (--say-digits)."),
    fsdd_take: int = typer.Option(30, "--fsdd-take", help="First FSDD take used (each is said once)."),
) -> None:
    """Play AUDIO into the service as PROTOCOL (or answer its liveness challenges with --say-digits) and print the
    decisions with their timing."""
    from ivr.simulate import PROTOCOLS, fsdd_answer, simulate_call
    from voiceauth.audio.io import load_audio
    from voiceauth.audio.resample import resample

    with user_errors():
        if protocol not in PROTOCOLS:
            raise ConfigError(f"protocol {protocol!r} is not supported; use {', '.join(PROTOCOLS)}")
        secret = None
        if audiohook_secret:
            try:
                secret = base64.b64decode(audiohook_secret, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ConfigError("--audiohook-secret must be base64") from exc
        answer = fsdd_answer(fsdd, fsdd_speaker, say_digits, first_take=fsdd_take) if say_digits else None
        if audio is None and answer is None:
            raise ConfigError("give --audio FILE, or --say-digits match|wrong to answer liveness challenges")
        samples = np.zeros(0, np.float32)
        if audio is not None:
            loaded = load_audio(audio)
            rate = loaded.sample_rate
            samples = loaded.samples if rate == 8000 else resample(loaded.samples, rate, 8000)
        res = asyncio.run(
            simulate_call(
                protocol,
                url,
                np.asarray(samples, dtype=np.float32),
                speaker,
                dtmf=dtmf,
                speed=speed,
                api_key=api_key,
                audiohook_secret=secret,
                tenant=tenant,
                twilio_auth_token=twilio_auth_token,
                answer=answer,
            )
        )
    typer.echo(f"call {res.call_id} ({protocol}, {res.audio_s:.2f} s of audio)")
    for at, what in res.events:
        typer.echo(f"  {at:7.3f} s  {what}")
    if res.decision is None:
        typer.echo("  no decision was sent on the stream (see GET /v1/calls/{call_id})")
    elif res.latency_ms is not None:
        typer.echo(f"  decision latency after the deciding audio: {res.latency_ms:.0f} ms")


def mic(
    action: str = typer.Argument(..., help="enroll | verify"),
    speaker: str = typer.Option(..., "--speaker", help="The customer reference."),
    url: str = typer.Option("ws://127.0.0.1:8000", "--url", help="Service base URL."),
    api_key: str = typer.Option("", "--api-key", envvar="VOICEAUTH_API_KEY", help="telephony API key."),
    seconds: float = typer.Option(10.0, "--seconds", help="Longest recording."),
) -> None:
    """Record from the default microphone with a live level meter and stream it to /v1/streams/l16."""
    from ivr.mic import run_mic

    with user_errors():
        if action not in ("enroll", "verify"):
            raise ConfigError(f"action {action!r} is not supported; use enroll or verify")
        code = run_mic(
            action,
            speaker,
            url=url,
            api_key=api_key or os.environ.get("VOICEAUTH_API_KEY", ""),
            seconds=seconds,
            out=sys.stderr,
        )
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.add_typer(call_app, name="call")
    app.command("mic")(mic)
