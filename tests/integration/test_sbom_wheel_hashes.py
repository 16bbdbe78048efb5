"""The SBOM names the sha256 of every installed wheel for a requirements.txt with several hashes per pin
(as `pip-compile --generate-hashes` writes): taken from pip's own `--report` of the build, checked here
against the wheel files the index serves."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from support.cli import alab, configure


def test_every_component_of_a_multi_hash_requirements_txt_has_its_wheels_sha256(
    project_copy: Any, credentials: Any, private_index: Any
) -> None:
    wheels = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in Path(private_index.dir_packages).glob("*.whl")
    }
    path = project_copy("pip")
    pins = [line for line in (path.parent / "requirements.txt").read_text().splitlines() if "==" in line]
    lines = []
    for pin in pins:
        name, version = pin.split("==")
        prefix = f"{name.replace('-', '_')}-{version}-"
        (digest,) = [d for wheel, d in wheels.items() if wheel.startswith(prefix)]
        # several hashes per pin: the wheel's own and another file's, so the lock alone cannot say which
        lines.append(f"{pin} \\\n    --hash=sha256:{'0' * 64} \\\n    --hash=sha256:{digest}")
    (path.parent / "requirements.txt").write_text("\n".join(lines) + "\n")
    configure(path, layer_name="hashes", s3dir="s3://unused/apps/", credentials=credentials)
    env = dict(os.environ, ALAB_INDEX_PASSWORD=credentials.password)
    built = alab("layer", "build", "--project", str(path.parent), "--json", env=env)
    assert built.returncode == 0, built.stderr
    result = json.loads(built.stdout)
    sbom = json.loads(Path(result["sbom"]).read_text())
    with zipfile.ZipFile(result["zip"]) as zf:
        assert not [n for n in zf.namelist() if n.endswith("install-report.json")]  # evidence stays out of the zip
    found = {
        c["name"]: ([h["content"] for h in c.get("hashes", []) if h["alg"] == "SHA-256"], c.get("properties", []))
        for c in sbom["components"]
    }
    assert set(found) == {pin.split("==")[0] for pin in pins}, found
    for name, (hashes, properties) in found.items():
        (wheel,) = [p["value"] for p in properties if p["name"] == "alab:wheel"]
        assert hashes == [wheels[wheel]], (name, hashes, wheel)
    report = (path.parent / "build" / "lambda" / "layer" / "install-report.json").read_text()
    assert credentials.password not in report  # pip redacts the index login from the URLs it reports
