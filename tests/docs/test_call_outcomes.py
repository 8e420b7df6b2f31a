"""docs/integrate/call-outcomes.md against the running service: a call's outcome reaches the webhook in the
documented body, with the documented fields, signed as the page's own checking code expects."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import httpx
import numpy as np
import pytest

from ivr.simulate import simulate_call
from tests.docs.conftest import ROOT, WEBHOOK_SECRET, DocsServer, Webhook

pytestmark = pytest.mark.model

PAGE = ROOT / "docs" / "integrate" / "call-outcomes.md"


def _blocks(lang: str) -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    return re.findall(rf"^```{lang}[^\n]*\n(.*?)^```", text, flags=re.S | re.M)


def test_outcome_posted_and_read_as_documented(docs_server: DocsServer, webhook: Webhook) -> None:
    tel = docs_server.keys["telephony"]
    silence = np.zeros(8000 * 2, dtype=np.float32)  # a caller who says nothing: NOT_ENOUGH_SPEECH
    before = len(webhook.posts)
    res = asyncio.run(
        simulate_call("l16", f"ws://127.0.0.1:{docs_server.port}", silence, "cust-silent", speed=0, api_key=tel)
    )
    deadline = time.monotonic() + 30
    while len(webhook.posts) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(webhook.posts) > before, "no call outcome reached the webhook"
    headers, body = webhook.posts[-1]
    posted = json.loads(body)
    assert posted["type"] == "call.outcome" and posted["call"]["call_id"] == res.call_id
    assert posted["call"]["decision"] == "NOT_ENOUGH_SPEECH"

    documented: dict[str, Any] = json.loads(_blocks("json")[0])  # the telephony view on the page
    assert set(posted["call"]) == set(documented), "the page's outcome fields differ from the service's"
    stored = httpx.get(f"{docs_server.base}/v1/calls/{res.call_id}", headers={"X-API-KEY": tel}, timeout=10)
    assert stored.status_code == 200 and set(stored.json()) == set(documented)
    assert "score" not in posted["call"] and "spoof_score" not in posted["call"]

    # the page's signature check accepts the service's signature and refuses a changed body
    namespace: dict[str, Any] = {}
    exec(_blocks("python")[0], namespace)  # noqa: S102 - the page's own code
    check = namespace["signed_by_voiceauth"]
    header = headers["x-voiceauth-signature"]
    assert check(WEBHOOK_SECRET.encode(), body, header) is True
    assert check(WEBHOOK_SECRET.encode(), body.replace(b"NOT_ENOUGH", b"ACCEPT_NOT"), header) is False
