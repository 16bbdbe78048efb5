"""Errors a user can act on: every message names the input that is wrong."""

from __future__ import annotations


class LayerError(ValueError):
    """Base of every clear, user-facing error raised by this package."""


class ManifestError(LayerError):
    """A dependency manifest is missing, unpinned, or stale against ``pyproject.toml``."""
