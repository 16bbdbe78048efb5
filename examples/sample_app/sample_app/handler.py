"""Lambda entry point: imports a dependency that only the layer provides."""

from __future__ import annotations

from typing import Any

import alab_demo_core


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return {"dependency": "alab-demo-core", "version": alab_demo_core.VERSION}
