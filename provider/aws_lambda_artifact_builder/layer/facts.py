"""The facts of one published layer version, as value objects.

The S3 record (:class:`LayerRecord`), a deploy's result (``publish.LayerDeployment``) and the
Pulumi and Terraform outputs all carry the same eight facts; they are copied here and only here
(``VersionFacts.of`` reads them from any of those, ``to_dict`` gives the outputs). A version as
Lambda reports it (:class:`PublishedVersion`) and the description this tool writes on every version
it publishes (``layer_description``) live here too, so the decision (``decide``) and the pipeline
need nothing of the AWS modules. Pure: no AWS, no files.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any


@dataclasses.dataclass(frozen=True)
class VersionFacts:
    """Which layer version, where its code and record are, and which fingerprint it was built from."""

    layer_name: str
    layer_version: int
    layer_version_arn: str
    layer_arn: str
    fingerprint: str
    code_sha256: str
    code_size: int
    s3uri_manifest: str

    @classmethod
    def of(cls, holder: Any) -> VersionFacts:
        """The facts of anything that has them as attributes (a record, a deployment)."""
        return cls(**{f.name: getattr(holder, f.name) for f in dataclasses.fields(cls)})

    def to_dict(self) -> dict[str, Any]:
        """The facts by name: the resource outputs of Pulumi and Terraform."""
        return dataclasses.asdict(self)


#: The names of the facts, in their order (the outputs every front end shows).
VERSION_FACTS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(VersionFacts))


DESCRIPTION_PREFIX = "aws-lambda-artifact-builder"
_DESCRIPTION_RE = re.compile(
    rf"^{DESCRIPTION_PREFIX} fingerprint=(?P<fingerprint>[0-9a-f]{{64}}) code-sha256=(?P<sha>[A-Za-z0-9+/=]{{44}})$"
)


def layer_description(*, fingerprint: str, code_sha256: str) -> str:
    """The description of every version this tool publishes: what crash recovery and retention go by."""
    return f"{DESCRIPTION_PREFIX} fingerprint={fingerprint} code-sha256={code_sha256}"


def parse_layer_description(description: str | None) -> tuple[str, str] | None:
    """``(fingerprint, code_sha256)`` of a version this tool published, else ``None``."""
    m = _DESCRIPTION_RE.match(description or "")
    return (m.group("fingerprint"), m.group("sha")) if m else None


@dataclasses.dataclass(frozen=True)
class PublishedVersion:
    """One layer version as Lambda reports it."""

    layer_name: str
    version: int
    layer_version_arn: str
    layer_arn: str
    code_sha256: str
    code_size: int
    description: str


#: Bump when the record's metadata (below) changes meaning.
RECORD_FORMAT = "1"
META_FORMAT = "alab-record-format"

#: The S3 object metadata key of each field of a record (``record.record_from_metadata`` reads them).
FIELDS_TO_META: dict[str, str] = {
    "layer_name": "layer-name",
    "layer_version": "layer-version",
    "layer_version_arn": "layer-version-arn",
    "layer_arn": "layer-arn",
    "fingerprint": "fingerprint",
    "code_sha256": "code-sha256",
    "code_size": "code-size",
    "tool": "tool",
    "python_version": "python-version",
    "architecture": "architecture",
}


class HasVersionFacts:
    """The facts of a version read as the holder's own attributes (``record.layer_version_arn``)."""

    facts: VersionFacts

    @property
    def layer_name(self) -> str:
        return self.facts.layer_name

    @property
    def layer_version(self) -> int:
        return self.facts.layer_version

    @property
    def layer_version_arn(self) -> str:
        return self.facts.layer_version_arn

    @property
    def layer_arn(self) -> str:
        return self.facts.layer_arn

    @property
    def fingerprint(self) -> str:
        return self.facts.fingerprint

    @property
    def code_sha256(self) -> str:
        return self.facts.code_sha256

    @property
    def code_size(self) -> int:
        return self.facts.code_size

    @property
    def s3uri_manifest(self) -> str:
        return self.facts.s3uri_manifest


@dataclasses.dataclass(frozen=True)
class LayerRecord(HasVersionFacts):
    """What S3 records about the layer version last deployed from one ``s3dir_lambda``: the version's
    facts and what it was built for. The facts read as the record's own attributes (``record.layer_version``)."""

    facts: VersionFacts
    tool: str
    python_version: str
    architecture: str
    #: Whether Lambda still has the version; ``None`` when not checked.
    version_exists: bool | None = None
    #: The recorded (normalised) manifest text, for package diffs.
    manifest_content: str = dataclasses.field(default="", repr=False, compare=False)

    @classmethod
    def from_facts(
        cls,
        facts: VersionFacts,
        *,
        tool: str,
        python_version: str,
        architecture: str,
        version_exists: bool | None = None,
    ) -> LayerRecord:
        return cls(facts, tool, python_version, architecture, version_exists)

    @classmethod
    def of(
        cls,
        *,
        tool: str,
        python_version: str,
        architecture: str,
        version_exists: bool | None = None,
        manifest_content: str = "",
        **facts: Any,
    ) -> LayerRecord:
        """A record from the facts given one by one (``layer_name=…, layer_version=…``), as S3 metadata holds them."""
        return cls(VersionFacts(**facts), tool, python_version, architecture, version_exists, manifest_content)

    def to_metadata(self) -> dict[str, str]:
        """S3 object metadata (ASCII strings) carrying every fact of the record."""
        meta = {META_FORMAT: RECORD_FORMAT}
        meta.update({key: str(getattr(self, name)) for name, key in FIELDS_TO_META.items()})
        return meta

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly facts (without the manifest text)."""
        return {
            **self.facts.to_dict(),
            "tool": self.tool,
            "python_version": self.python_version,
            "architecture": self.architecture,
            "version_exists": self.version_exists,
        }
