"""The facts of one published layer version, as one value object.

The S3 record (``record.LayerRecord``), a deploy's result (``publish.LayerDeployment``) and the
Pulumi and Terraform outputs all carry the same eight facts; they are copied here and only here
(``VersionFacts.of`` reads them from any of those, ``to_dict`` gives the outputs). Pure: no AWS,
no files.
"""

from __future__ import annotations

import dataclasses
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
