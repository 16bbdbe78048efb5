"""The smallest dynamic resource: its provider imports nothing beyond the SDK and never changes.

benchmarks/bench_pulumi.py previews it as the floor of any Python dynamic provider (the plugin process starts
and imports `pulumi`); the plugin imports this module by name, so PYTHONPATH must hold this folder.
"""

from __future__ import annotations

from typing import Any

import pulumi.dynamic as dynamic


class NoopProvider(dynamic.ResourceProvider):
    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> dynamic.DiffResult:
        return dynamic.DiffResult(changes=False)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        return dynamic.CreateResult("noop", dict(props))


class Noop(dynamic.Resource):
    def __init__(self, name: str) -> None:
        super().__init__(NoopProvider(), name, {"n": 1})
