"""A stand-in for the Pulumi engine, so the dynamic provider is tested without the Pulumi CLI.

Program side: the program runs under ``pulumi.runtime.set_mocks`` with a monitor that keeps the
exact ``RegisterResource`` request the SDK sends, so the inputs (secrets, and the dill-pickled
``__provider``) are the ones the real resource constructor registers.

Engine side: like the CLI, :class:`DynamicProviderServer` starts ``python -u -m pulumi.dynamic
<engine-address>``, reads the port the server prints and speaks ``pulumirpc.ResourceProvider`` to it.
:class:`Stack` sequences the calls as the engine does for one custom resource (preview, up, refresh,
destroy) and keeps a state whose secret values are sealed the way a checkpoint encrypts them.

Facts of pulumi 3.272 this follows (read from ``pulumi/dynamic/__main__.py`` and the engine):
- the server never dials the engine address (``main()`` ignores argv; ``pulumi.log`` falls back to
  stderr), so no Engine service is needed and an unused address is passed;
- ``Configure`` answers ``acceptSecrets=False`` and no ``supportsPreview``, so the engine sends plain
  values, calls only Check and Diff during a preview, and marks an output secret when the input of
  the same name was secret (``annotateSecrets``);
- Check gets the old *inputs*; Diff, Update, Read and Delete get the old *outputs*.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pulumi
from google.protobuf import struct_pb2
from google.protobuf.message import Message
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc
from pulumi.runtime.settings import get_root_resource
from support.servers import free_port

PROVIDER_KEY = "__provider"
DIFF_NONE = provider_pb2.DiffResponse.DIFF_NONE
DIFF_SOME = provider_pb2.DiffResponse.DIFF_SOME
DIFF_UNKNOWN = provider_pb2.DiffResponse.DIFF_UNKNOWN


# ------------------------------------------------------------------ program side
@dataclasses.dataclass(frozen=True)
class Registration:
    """One resource as the program registered it: the goal state the engine works from."""

    type: str
    name: str
    urn: str
    #: Inputs as the SDK serialised them, deserialised: secrets stay wrapped (``rpc.is_rpc_secret``).
    inputs: dict[str, Any]

    @property
    def pickled_provider(self) -> bytes:
        """The dill pickle of the provider object, as the provider process will load it."""
        import base64

        return base64.b64decode(rpc.unwrap_rpc_secret(self.inputs[PROVIDER_KEY]))


class NoOutputMocks(pulumi_mocks.Mocks):
    """Mocks that give every resource an id and no outputs: enough to capture registrations."""

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", {}

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi_mocks.Mocks) -> None:
        super().__init__(mocks)
        self.requests: list[Any] = []

    def RegisterResource(self, request: Any) -> Any:
        if request.type != "pulumi:pulumi:Stack":
            self.requests.append(request)
        return super().RegisterResource(request)


def run_program(
    program: Callable[[], Any],
    *,
    project: str = "alab-test",
    stack: str = "dev",
    preview: bool = True,
    mocks: pulumi_mocks.Mocks | None = None,
    exports: dict[str, Any] | None = None,
) -> list[Registration]:
    """Run a Pulumi program under mocks and return what it registered, in order.

    ``exports``, when given, receives the stack outputs the program exported (resolved).
    """
    mocks = mocks or NoOutputMocks()
    monitor = _RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview, monitor=monitor)
    root = get_root_resource()
    assert root is not None
    root.outputs.clear()  # the mocks' root stack outlives a run: keep only this program's exports

    def run() -> Any:
        program()
        if exports is None:
            return None
        return pulumi.Output.all(**root.outputs).apply(exports.update)

    pulumi.runtime.test(run)()
    registrations = []
    for request in monitor.requests:
        # The engine leaves the root stack out of a URN's type chain (the mock monitor does not).
        parent = "" if "::pulumi:pulumi:Stack::" in request.parent else request.parent
        urn = monitor.make_urn(parent, request.type, request.name)
        inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
        registrations.append(Registration(type=request.type, name=request.name, urn=urn, inputs=inputs))
    return registrations


def urn_for_stack(registration: Registration, stack: str) -> str:
    """The same resource declared in another stack of the project."""
    parts = registration.urn.split("::")
    parts[0] = f"urn:pulumi:{stack}"
    return "::".join(parts)


# ------------------------------------------------------------------ property plumbing
def strip_secrets(value: Any) -> Any:
    """What the engine sends a provider that does not accept secrets: plain values."""
    if rpc.is_rpc_secret(value):
        return strip_secrets(value["value"])
    if isinstance(value, dict):
        return {k: strip_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_secrets(v) for v in value]
    return value


def contains_secrets(value: Any) -> bool:
    if rpc.is_rpc_secret(value):
        return True
    if isinstance(value, dict):
        return any(contains_secrets(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_secrets(v) for v in value)
    return False


def annotate_secrets(outs: dict[str, Any], ins: dict[str, Any]) -> dict[str, Any]:
    """The engine's ``annotateSecrets``: an output is secret when the input of the same name was."""
    result = dict(outs)
    for key, in_value in ins.items():
        if key not in result:
            continue
        out_value = result[key]
        if isinstance(out_value, dict) and isinstance(in_value, dict) and not rpc.is_rpc_secret(in_value):
            result[key] = annotate_secrets(out_value, in_value)
        elif not rpc.is_rpc_secret(out_value) and contains_secrets(in_value):
            result[key] = rpc.wrap_rpc_secret(out_value)
    return result


def to_struct(props: dict[str, Any]) -> struct_pb2.Struct:
    """Serialise with the SDK, as every property bag on the wire is."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(props, {}))
    finally:
        loop.close()


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return dict(rpc.deserialize_properties(struct, keep_unknowns=True))


def _seal(value: Any) -> Any:
    """A checkpoint stores secrets encrypted; a digest stands in for the ciphertext."""
    if rpc.is_rpc_secret(value):
        blob = json.dumps(strip_secrets(value["value"]), sort_keys=True).encode()
        return {"secure": "v1:" + hashlib.sha256(blob).hexdigest()}
    if isinstance(value, dict):
        return {k: _seal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_seal(v) for v in value]
    return value


@dataclasses.dataclass
class ResourceState:
    """The engine's record of one resource; secret values stay wrapped."""

    urn: str
    type: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]

    @property
    def plain_outputs(self) -> dict[str, Any]:
        return strip_secrets(self.outputs)

    def checkpoint_json(self) -> str:
        """The resource as the state file stores it (secrets sealed)."""
        record = {
            "urn": self.urn,
            "type": self.type,
            "id": self.id,
            "inputs": _seal(self.inputs),
            "outputs": _seal(self.outputs),
        }
        return json.dumps(record, sort_keys=True)


# ------------------------------------------------------------------ the provider process
class ProviderError(Exception):
    """A gRPC call failed; ``details`` is what the engine would show the user."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{method} failed with {code.name}: {details}")
        self.method = method
        self.code = code
        self.details = details


@dataclasses.dataclass
class Exchange:
    """One gRPC round trip, kept so a test can scan everything the provider sent back."""

    method: str
    request: Message
    response: Message | None
    error: str | None
    #: Wall time of the round trip, serialisation on both sides included.
    seconds: float = 0.0

    def response_bytes(self) -> bytes:
        if self.response is not None:
            return self.response.SerializeToString()
        return (self.error or "").encode()


class DynamicProviderServer:
    """``python -u -m pulumi.dynamic <engine>`` as the engine starts it, and a gRPC client to it."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, dir_log: Path) -> None:
        self.proc = proc
        self.port = port
        self.dir_log = dir_log
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        self.transcript: list[Exchange] = []

    @classmethod
    def start(
        cls, dir_log: Path, *, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60.0
    ) -> DynamicProviderServer:
        dir_log.mkdir(parents=True, exist_ok=True)
        # 3.272's server never dials the engine: an address nobody listens on proves it.
        engine_address = f"127.0.0.1:{free_port()}"
        stderr = open(dir_log / "provider.stderr.log", "ab")  # noqa: SIM115  (the server process holds it)
        proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "pulumi.dynamic", engine_address],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=cwd,
            env=env,
        )
        stderr.close()
        assert proc.stdout is not None
        first_line: list[bytes] = []
        reader = threading.Thread(target=lambda: first_line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        if not first_line or not first_line[0].strip().isdigit():
            proc.kill()
            proc.wait()
            log = (dir_log / "provider.stderr.log").read_text(errors="replace")
            raise RuntimeError(f"the dynamic provider printed no port within {timeout}s: {first_line!r}\n{log}")
        # The engine keeps reading the plugin's stdout; without that a chatty provider blocks on a full pipe.
        threading.Thread(target=cls._drain, args=(proc, dir_log / "provider.stdout.log"), daemon=True).start()
        return cls(proc, int(first_line[0]), dir_log)

    @staticmethod
    def _drain(proc: subprocess.Popen[bytes], path: Path) -> None:
        assert proc.stdout is not None
        with open(path, "ab") as f:
            for line in proc.stdout:
                f.write(line)
                f.flush()

    def log_text(self) -> str:
        """Everything the provider wrote after its port (the engine shows it as diagnostics)."""
        parts = [p.read_text(errors="replace") for p in sorted(self.dir_log.glob("provider.*.log"))]
        return "\n".join(parts)

    def call(self, method: str, request: Message) -> Any:
        started = time.perf_counter()
        try:
            response = getattr(self.stub, method)(request, timeout=600)
        except grpc.RpcError as e:
            details = e.details() or ""  # type: ignore[attr-defined]
            self.transcript.append(Exchange(method, request, None, details, time.perf_counter() - started))
            raise ProviderError(method, e.code(), details) from None  # type: ignore[attr-defined]
        self.transcript.append(Exchange(method, request, response, None, time.perf_counter() - started))
        return response

    def stop(self) -> None:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def provider_server(
    dir_log: Path, *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[DynamicProviderServer]:
    server = DynamicProviderServer.start(dir_log, env=env, cwd=cwd)
    try:
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------ the engine's sequencing
class CheckFailed(Exception):
    def __init__(self, failures: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{p}: {r}" for p, r in failures))
        self.failures = failures


@dataclasses.dataclass
class Step:
    """What one resource's step was: ``create``, ``same``, ``update``, ``replace`` or ``delete``."""

    op: str
    checked_inputs: dict[str, Any] | None = None
    diff: Any = None  # provider_pb2.DiffResponse
    seconds: float = 0.0

    @property
    def replaces(self) -> list[str]:
        return list(self.diff.replaces) if self.diff is not None else []


@dataclasses.dataclass
class Stack:
    """One stack's view of one dynamic resource, driven the way the engine drives it."""

    server: DynamicProviderServer
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    state: ResourceState | None = None
    _configured: bool = False

    def configure(self) -> None:
        if self._configured:
            return
        variables = {k: v if isinstance(v, str) else json.dumps(v) for k, v in self.config.items()}
        request = provider_pb2.ConfigureRequest(
            variables=variables, args=to_struct(dict(self.config)), acceptSecrets=True, acceptResources=True
        )
        response = self.server.call("Configure", request)
        assert response.acceptSecrets is False, "the harness strips secrets because the provider refuses them"
        self._configured = True

    def check(self, goal: Registration, urn: str | None = None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Check the goal against the old inputs; return the annotated inputs and the failures."""
        self.configure()
        olds = strip_secrets(self.state.inputs) if self.state else {}
        request = provider_pb2.CheckRequest(
            urn=urn or goal.urn,
            name=goal.name,
            type=goal.type,
            olds=to_struct(olds),
            news=to_struct(strip_secrets(goal.inputs)),
            randomSeed=os.urandom(32),
        )
        response = self.server.call("Check", request)
        failures = [(f.property, f.reason) for f in response.failures]
        return annotate_secrets(from_struct(response.inputs), goal.inputs), failures

    def diff(self, goal: Registration, checked: dict[str, Any]) -> Any:
        assert self.state is not None
        request = provider_pb2.DiffRequest(
            id=self.state.id,
            urn=self.state.urn,
            name=goal.name,
            type=goal.type,
            olds=to_struct(strip_secrets(self.state.outputs)),
            news=to_struct(strip_secrets(checked)),
            old_inputs=to_struct(strip_secrets(self.state.inputs)),
        )
        return self.server.call("Diff", request)

    def _plan(self, goal: Registration, urn: str | None) -> Step:
        started = time.perf_counter()
        checked, failures = self.check(goal, urn)
        if failures:
            raise CheckFailed(failures)
        if self.state is None:
            return Step("create", checked, None, time.perf_counter() - started)
        diff = self.diff(goal, checked)
        if diff.changes == DIFF_UNKNOWN:  # the engine's legacy fallback: compare the inputs
            same = strip_secrets(self.state.inputs) == strip_secrets(checked)
            op = "same" if same else "update"
        elif diff.changes == DIFF_NONE:
            op = "same"
        else:
            op = "replace" if diff.replaces else "update"
        return Step(op, checked, diff, time.perf_counter() - started)

    def preview(self, goal: Registration, urn: str | None = None) -> Step:
        """``pulumi preview``: Check and Diff only (the provider does not support preview creates)."""
        return self._plan(goal, urn)

    def up(self, goal: Registration, urn: str | None = None) -> Step:
        """``pulumi up`` for the resource; the state follows what the provider returned."""
        step = self._plan(goal, urn)
        checked = step.checked_inputs
        assert checked is not None
        urn = urn or goal.urn
        if step.op == "same":
            assert self.state is not None
            self.state = dataclasses.replace(self.state, inputs=checked)
        elif step.op == "create" or step.op == "replace":
            old = self.state
            request = provider_pb2.CreateRequest(
                urn=urn, name=goal.name, type=goal.type, properties=to_struct(strip_secrets(checked))
            )
            response = self.server.call("Create", request)
            outputs = annotate_secrets(from_struct(response.properties), checked)
            self.state = ResourceState(urn=urn, type=goal.type, id=response.id, inputs=checked, outputs=outputs)
            if old is not None:  # create-before-delete, the engine's default replacement order
                self._delete(old)
        else:
            assert self.state is not None
            request = provider_pb2.UpdateRequest(
                id=self.state.id,
                urn=urn,
                name=goal.name,
                type=goal.type,
                olds=to_struct(strip_secrets(self.state.outputs)),
                news=to_struct(strip_secrets(checked)),
                old_inputs=to_struct(strip_secrets(self.state.inputs)),
            )
            response = self.server.call("Update", request)
            outputs = annotate_secrets(from_struct(response.properties), checked)
            self.state = dataclasses.replace(self.state, inputs=checked, outputs=outputs)
        return step

    def refresh(self) -> ResourceState | None:
        """``pulumi refresh``: Read; an empty id means the resource is gone and leaves the state."""
        assert self.state is not None
        self.configure()
        request = provider_pb2.ReadRequest(
            id=self.state.id,
            urn=self.state.urn,
            type=self.state.type,
            properties=to_struct(strip_secrets(self.state.outputs)),
            inputs=to_struct(strip_secrets(self.state.inputs)),
        )
        response = self.server.call("Read", request)
        if not response.id:
            self.state = None
            return None
        outputs = annotate_secrets(from_struct(response.properties), self.state.inputs)
        inputs = self.state.inputs
        if response.HasField("inputs"):
            inputs = annotate_secrets(from_struct(response.inputs), self.state.inputs)
        self.state = dataclasses.replace(self.state, id=response.id, inputs=inputs, outputs=outputs)
        return self.state

    def _delete(self, state: ResourceState) -> None:
        request = provider_pb2.DeleteRequest(
            id=state.id,
            urn=state.urn,
            type=state.type,
            properties=to_struct(strip_secrets(state.outputs)),
            old_inputs=to_struct(strip_secrets(state.inputs)),
        )
        self.server.call("Delete", request)

    def destroy(self) -> None:
        """``pulumi destroy``: Delete with the last outputs, then forget the resource."""
        assert self.state is not None
        self.configure()
        self._delete(self.state)
        self.state = None
