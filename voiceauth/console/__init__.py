"""The security console: a single page and the /v1/console API (security role only)."""

from __future__ import annotations
