"""``alab layer build|list|diff|sbom|clean`` and the SBOM and provenance stored with each version, run as a
user runs them: the console script as a process against the moto server and the private index."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import importlib.metadata
import json
import os
import zipfile
from pathlib import Path

import pytest
from support.cli import alab, configure
from support.layers import s3_snapshot
from support.projects import lock, set_pin


@pytest.fixture()
def configured(project_copy, bucket: str, credentials) -> Path:
    return configure(
        project_copy("uv"), layer_name="sample-deps", s3dir=f"s3://{bucket}/apps/sample/", credentials=credentials
    )


def _env(credentials) -> dict[str, str]:
    return dict(os.environ, ALAB_INDEX_PASSWORD=credentials.password)


def _no_aws_env(credentials) -> dict[str, str]:
    """No AWS credentials, region, endpoint or configuration files at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE="/nonexistent/config",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/credentials",
        ALAB_INDEX_PASSWORD=credentials.password,
    )
    return env


def _unzipped_distributions(path_zip: Path, dest: Path) -> dict[str, tuple[str, str | None]]:
    """name -> (version, licence) of what a zip holds, read by importlib.metadata from the extracted tree."""
    with zipfile.ZipFile(path_zip) as zf:
        zf.extractall(dest)
    found = {}
    for dist in importlib.metadata.distributions(path=[str(dest / "python")]):
        meta = dist.metadata
        licence = meta.get("License-Expression") or next(
            (c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")), None
        )
        found[meta["Name"]] = (meta["Version"], licence)
    return found


def test_build_needs_no_aws_and_clean_removes_only_the_build_folder(configured, credentials, tmp_path):
    project = configured.parent
    (project / "build").mkdir()
    (project / "build" / "keep.txt").write_text("not ours")
    built = alab("layer", "build", "--project", str(project), env=_no_aws_env(credentials))
    assert built.returncode == 0, built.stderr
    path_zip = project / "build" / "lambda" / "layer" / "layer.zip"
    assert f"Built {path_zip}" in built.stdout
    assert "python3.12 x86_64 (uv, local)" in built.stdout
    assert " kB zipped, " in built.stdout and "% of the 250 MiB limit" in built.stdout
    assert f"sha256       {hashlib.sha256(path_zip.read_bytes()).hexdigest()}" in built.stdout
    assert "alab-demo-core" in built.stdout and "alab-demo-extra" in built.stdout
    assert (project / "build" / "lambda" / "layer" / "sbom.cdx.json").is_file()
    # The deploy's build, with its stage lines: what was installed, then what was zipped.
    stages = [line.split()[0] for line in built.stderr.splitlines()]
    assert stages == ["install", "package"], built.stderr
    assert "2 packages for python3.12 x86_64 (local)" in built.stderr and "layer.zip " in built.stderr

    as_json = alab("layer", "build", "--project", str(project), "--json", "--quiet", env=_no_aws_env(credentials))
    assert as_json.returncode == 0, as_json.stderr
    assert as_json.stderr == ""
    report = json.loads(as_json.stdout)
    assert report["zip"] == str(path_zip) and report["zipped_size"] == path_zip.stat().st_size
    assert report["sha256"] == hashlib.sha256(path_zip.read_bytes()).hexdigest()  # the same bytes again

    with open(project / "build" / "lambda" / "layer-build.lock", "a+") as held:  # as a running deploy holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        busy = alab("layer", "clean", "--project", str(project))
    assert busy.returncode == 1 and "is using" in busy.stderr and path_zip.is_file()

    before = sorted(p.relative_to(project) for p in project.rglob("*") if "build" not in p.parts)
    cleaned = alab("layer", "clean", "--project", str(project))
    assert cleaned.returncode == 0, cleaned.stderr
    assert f"Removed {project / 'build' / 'lambda' / 'layer'}" in cleaned.stdout
    assert not (project / "build" / "lambda" / "layer").exists()
    assert (project / "build" / "keep.txt").read_text() == "not ours"
    assert sorted(p.relative_to(project) for p in project.rglob("*") if "build" not in p.parts) == before
    again = alab("layer", "clean", "--project", str(project))
    assert again.returncode == 0 and "Nothing to clean" in again.stdout


def test_list_diff_and_sbom_of_recorded_versions(
    configured, credentials, bucket, s3_client, private_index, dir_tool_cache, tmp_path
):
    project = str(configured.parent)
    empty = alab("layer", "list", "--project", project)
    assert empty.returncode == 0, empty.stderr
    assert f"No version is recorded in s3://{bucket}/apps/sample/layer/ for uv.lock" in empty.stdout

    first = alab("-v", "layer", "deploy", "--project", project, env=_env(credentials))
    assert first.returncode == 0, first.stderr
    assert "[evidence] wrote" in first.stderr  # the step's detail, shown with -v
    path_zip = configured.parent / "build" / "lambda" / "layer" / "layer.zip"
    zip_v1 = path_zip.read_bytes()
    set_pin(configured, "alab-demo-core", "1.1.0")
    lock("uv", configured.parent, private_index, dir_tool_cache)
    second = alab("layer", "deploy", "--project", project, env=_env(credentials))
    assert second.returncode == 0, second.stderr
    keys = set(s3_snapshot(s3_client, bucket))
    for version in ("000001", "000002"):
        assert {f"apps/sample/layer/{version}/{n}" for n in ("uv.lock", "sbom.cdx.json", "provenance.json")} <= keys

    listed = alab("layer", "list", "--project", project, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["layer_version"] for r in rows] == [1, 2]
    for row in rows:
        head = s3_client.head_object(Bucket=bucket, Key=f"apps/sample/layer/{row['layer_version']:06d}/uv.lock")
        assert row["fingerprint"] == head["Metadata"]["fingerprint"]
        assert row["code_size"] == int(head["Metadata"]["code-size"])
        assert row["layer_version_arn"].endswith(f":layer:sample-deps:{row['layer_version']}")
        assert row["package_count"] == 2 and row["sbom"] and row["provenance"]
    text = alab("layer", "list", "--project", project)
    assert "VERSION  RECORDED (UTC)" in text.stdout and rows[1]["layer_version_arn"] in text.stdout
    assert rows[0]["fingerprint"][:12] in text.stdout and " kB " in text.stdout

    diff = alab("layer", "diff", "1", "2", "--project", project)
    assert diff.returncode == 0, diff.stderr
    assert diff.stdout.splitlines() == [
        "1 package differ from version 1 to version 2:",
        "  ~ alab-demo-core 1.0.0 -> 1.1.0",
    ]
    assert (
        "No package differs between version 2 and the local lock"
        in alab("layer", "diff", "2", "local", "--project", project).stdout
    )
    as_json = json.loads(alab("layer", "diff", "v1", "local", "--project", project, "--json").stdout)
    assert as_json["package_changes"]["changed"] == {"alab-demo-core": {"old": "1.0.0", "new": "1.1.0"}}
    missing = alab("layer", "diff", "7", "local", "--project", project)
    assert missing.returncode == 1 and "error: version 7 is not recorded" in missing.stderr
    bad = alab("layer", "diff", "seven", "local", "--project", project)
    assert bad.returncode == 1 and "'seven' is neither a layer version number" in bad.stderr

    sbom_v1 = alab("layer", "sbom", "1", "--project", project)
    assert sbom_v1.returncode == 0, sbom_v1.stderr
    _check_sbom(sbom_v1.stdout, zip_v1, tmp_path / "v1", private_index)
    provenance = json.loads(alab("layer", "sbom", "2", "--provenance", "--project", project).stdout)
    assert provenance["layer"]["version"] == 2 and provenance["fingerprint"] == rows[1]["fingerprint"]
    assert provenance["layer"]["zip_sha256"] == hashlib.sha256(path_zip.read_bytes()).hexdigest()
    assert provenance["lock"]["sha256"] == hashlib.sha256((configured.parent / "uv.lock").read_bytes()).hexdigest()
    assert provenance["tool"]["name"] == "uv" and provenance["tool"]["version"].startswith("uv ")
    assert provenance["build"]["place"] == "local" and provenance["target"]["runtime"] == "python3.12"
    assert provenance["builder"]["version"] == importlib.metadata.version("aws-lambda-artifact-builder")
    assert provenance["created_at"]
    nothing = alab("layer", "sbom", "9", "--project", project)
    assert nothing.returncode == 1 and "version 9 has no SBOM" in nothing.stderr


def _check_sbom(text: str, zip_bytes: bytes, dest: Path, private_index) -> None:
    """The SBOM is valid CycloneDX 1.6, describes this zip, and lists exactly its distributions."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = Bom.from_json(json.loads(text))  # type: ignore[attr-defined]
    assert bom.metadata.component is not None
    assert [h.content for h in bom.metadata.component.hashes] == [hashlib.sha256(zip_bytes).hexdigest()]
    dest.mkdir()
    (dest / "layer.zip").write_bytes(zip_bytes)
    in_zip = _unzipped_distributions(dest / "layer.zip", dest)
    assert in_zip == {"alab-demo-core": ("1.0.0", "MIT License"), "alab-demo-extra": ("1.0.0", "Apache-2.0")}
    described = {}
    for component in bom.components:
        licences = [getattr(lic, "value", None) or getattr(lic, "id", None) or lic.name for lic in component.licenses]
        described[component.name] = (component.version, licences[0] if licences else None)
        assert str(component.purl) == f"pkg:pypi/{component.name}@{component.version}"
        wheel = private_index.dir_packages / f"{component.name.replace('-', '_')}-{component.version}-py3-none-any.whl"
        assert [h.content for h in component.hashes] == [hashlib.sha256(wheel.read_bytes()).hexdigest()]
    assert described == in_zip


def test_the_sbom_of_one_lock_is_the_same_on_every_build(configured, credentials):
    project = str(configured.parent)
    path = configured.parent / "build" / "lambda" / "layer"
    sboms = []
    for _ in range(2):
        built = alab("layer", "build", "--project", project, "--quiet", env=_no_aws_env(credentials))
        assert built.returncode == 0, built.stderr
        sboms.append(((path / "sbom.cdx.json").read_bytes(), (path / "layer.zip").read_bytes()))
    assert sboms[0] == sboms[1]
    assert b"timestamp" not in sboms[0][0]


def test_plan_takes_every_flag_deploy_takes(configured, credentials):
    from aws_lambda_artifact_builder.cli import build_parser

    def flags(command: str) -> set[str]:
        parser = build_parser()
        layer = parser._subparsers._group_actions[0].choices["layer"]  # type: ignore[union-attr]
        sub = layer._subparsers._group_actions[0].choices[command]
        # each command's own: plan's exit codes, build's push to the artifact store
        return {s for a in sub._actions for s in a.option_strings} - {"--detailed-exitcode", "--push"}

    assert flags("plan") == flags("deploy")
    assert flags("build") == flags("deploy") - {"--keep-last", "--permission"}  # a build keeps no versions
    result = alab(
        "layer",
        "plan",
        "--project",
        str(configured.parent),
        "--index-url",
        credentials.index_url,
        "--index-username",
        credentials.username,
        "--build-in",
        "container",
        "--keep-last",
        "2",
        "--detailed-exitcode",
        env=_env(credentials),
    )
    assert result.returncode == 2, result.stderr
    assert "CHANGE: no earlier version is recorded" in result.stdout


def test_every_flag_of_every_command_has_help():
    from aws_lambda_artifact_builder.cli import build_parser

    def walk(parser, path):
        for action in parser._actions:
            if action.option_strings and action.help != "show this help message and exit":
                assert action.help, f"{' '.join(path)} {action.option_strings[0]} has no --help text"
            if action.dest != "help" and not action.option_strings and action.choices is None:
                assert action.help, f"{' '.join(path)} {action.dest} has no --help text"
            if isinstance(action.choices, dict):
                for name, sub in action.choices.items():
                    walk(sub, [*path, name])

    walk(build_parser(), ["alab"])
    shown = alab("layer", "deploy", "--help")
    assert "--layer-name LAYER_NAME\n                        Lambda layer name\n" in shown.stdout


def test_the_zip_digest_in_the_sbom_is_lambdas(configured, credentials, lambda_client):
    deployed = alab("layer", "deploy", "--project", str(configured.parent), "--quiet", "--json", env=_env(credentials))
    assert deployed.returncode == 0, deployed.stderr
    sbom = json.loads(alab("layer", "sbom", "1", "--project", str(configured.parent)).stdout)
    digest = sbom["metadata"]["component"]["hashes"][0]["content"]
    code = lambda_client.get_layer_version(LayerName="sample-deps", VersionNumber=1)["Content"]["CodeSha256"]
    assert base64.b64encode(bytes.fromhex(digest)).decode() == code


def test_a_slim_option_is_a_flag_that_changes_the_fingerprint(configured, credentials):
    project = str(configured.parent)
    deployed = alab("layer", "deploy", "--project", project, "--quiet", env=_env(credentials))
    assert deployed.returncode == 0, deployed.stderr
    same = alab("layer", "plan", "--project", project, "--no-drop-tests", "--detailed-exitcode")
    assert same.returncode == 0, same.stdout + same.stderr  # off is the default: the recorded fingerprint holds
    slim = alab("layer", "plan", "--project", project, "--drop-tests", "--detailed-exitcode")
    assert slim.returncode == 2, slim.stdout + slim.stderr
    assert "not the package versions: the lock file, excluded packages or packaging options differ" in slim.stdout
    configured.write_text(configured.read_text() + "drop_type_stubs = true\n")
    from_config = alab("layer", "plan", "--project", project, "--json")
    assert json.loads(from_config.stdout)["changed"] is True
