"""A dynamic provider that writes one line each way a provider can: stderr, ``pulumi.log.info`` and ``.warn``.

Importable by the provider plugin through PYTHONPATH, so that dill pickles the class by reference.
"""

from __future__ import annotations

import sys
from typing import Any

import pulumi
import pulumi.dynamic as dynamic


class LogProbeProvider(dynamic.ResourceProvider):
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        say("diff")
        return dynamic.DiffResult(changes=olds.get("n") != news.get("n"))

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        say("create")
        return dynamic.CreateResult("probe", dict(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        say("update")
        return dynamic.UpdateResult(dict(news))


def say(op: str) -> None:
    print(f"probe-stderr-{op}", file=sys.stderr, flush=True)
    pulumi.log.info(f"probe-log-info-{op}")
    pulumi.log.warn(f"probe-log-warn-{op}")


class LogProbe(dynamic.Resource):
    def __init__(self, name: str, n: int) -> None:
        super().__init__(LogProbeProvider(), name, {"n": n})
