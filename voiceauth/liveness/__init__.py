"""Challenge-response liveness: the caller says a fresh random digit string, and the service checks what was said.

:mod:`voiceauth.liveness.challenges` is the pure logic (CSPRNG digits, hashing, matching, expiry),
:mod:`voiceauth.liveness.recognizer` the offline digit recogniser behind a small protocol, and
:mod:`voiceauth.liveness.store` the challenges table (single use enforced by one conditional UPDATE).
"""

from __future__ import annotations
