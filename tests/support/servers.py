"""Real servers on loopback for the tests: the moto AWS endpoint and a private package index.

Each is a separate process started on a free port, waited for until it answers, and
stopped by its PID, so integration tests talk HTTP exactly as users' tools do.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_http(
    url: str, *, proc: subprocess.Popen[bytes], timeout: float = 30.0, headers: dict[str, str] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before answering on {url}")
        try:
            urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclasses.dataclass
class MotoServer:
    """``moto_server`` on 127.0.0.1 at a free port."""

    port: int
    proc: subprocess.Popen[bytes]

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, log_path: Path) -> MotoServer:
        port = free_port()
        log = open(log_path, "wb")  # noqa: SIM115  (the server process holds it)
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = cls(port=port, proc=proc)
        try:
            wait_for_http(f"{server.endpoint_url}/moto-api/", proc=proc)
        except Exception:
            stop_process(proc)
            raise
        return server

    def reset(self) -> None:
        """Forget every resource, so each test starts from an empty account."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).close()

    def stop(self) -> None:
        stop_process(self.proc)


@dataclasses.dataclass
class PrivateIndex:
    """``pypiserver`` behind basic auth for every action (list, download, upload)."""

    port: int
    proc: subprocess.Popen[bytes]
    username: str
    password: str
    dir_packages: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple/"

    def auth_header(self, username: str | None = None, password: str | None = None) -> dict[str, str]:
        token = f"{username or self.username}:{password or self.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(token).decode()}

    @classmethod
    def start(cls, dir_packages: Path, dir_state: Path, username: str, password: str) -> PrivateIndex:
        from passlib.apache import HtpasswdFile

        dir_state.mkdir(parents=True, exist_ok=True)
        path_htpasswd = dir_state / "htpasswd"
        ht = HtpasswdFile(str(path_htpasswd), new=True)
        ht.set_password(username, password)
        ht.save()
        port = free_port()
        log = open(dir_state / "pypiserver.log", "wb")  # noqa: SIM115  (the server process holds it)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pypiserver",
                "run",
                "-i",
                "127.0.0.1",
                "-p",
                str(port),
                "-P",
                str(path_htpasswd),
                "-a",
                "download,list,update",
                "--disable-fallback",
                "--hash-algo",
                "sha256",
                str(dir_packages),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        index = cls(port=port, proc=proc, username=username, password=password, dir_packages=dir_packages)
        try:
            wait_for_http(f"http://127.0.0.1:{port}/health", proc=proc)
        except Exception:
            stop_process(proc)
            raise
        return index

    def stop(self) -> None:
        stop_process(self.proc)
