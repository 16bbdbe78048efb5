"""Lambda entry point: imports requests, which only the layer provides."""

from __future__ import annotations

from typing import Any

import requests


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return {"dependency": "requests", "version": requests.__version__}
