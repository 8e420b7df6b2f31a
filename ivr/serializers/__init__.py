"""Telephony serializers: one per provider, each a pure translation to and from ivr.serializers.base events."""
