"""The IVR edge: telephony WebSocket protocols over the one streaming verifier.

``serializers/`` (one per provider, pure) -> ``transport.py`` (the call loop, knows no provider) ->
``session.py`` (customer channel, streaming verifier, DTMF, call flow) -> ``calls.py`` (outcomes, webhook).
``routes.py`` mounts ``/v1/streams/{twilio,audiohook,l16}``, ``/v1/twiml`` and ``/v1/calls`` on the API app.
"""
