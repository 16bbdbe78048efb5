"""The ``alab`` Terraform provider and the entry point of its executable.

AWS access follows boto3's default chain (environment, profile, instance role), like the CLI and the
Pulumi provider; the optional ``region`` and ``endpoint_url`` in the provider block override it, so a
configuration can point at a local endpoint the same way it points hashicorp/aws at one.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import tf.provider
from tf import runner, schema, types
from tf.iface import Config, DataSource, Provider, Resource
from tf.utils import Diagnostics

from ..layer.targets import resource_clients
from . import PROVIDER_SOURCE, PROVIDER_TYPE
from .resource import LayerResource
from .servicer import AlabServicer


class AlabProvider(Provider):
    """Serves ``alab_layer``; holds the AWS clients for one Terraform run."""

    def __init__(self) -> None:
        self.region: str | None = None
        self.endpoint_url: str | None = None
        self._clients: dict[tuple[str | None, str | None], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get_model_prefix(self) -> str:
        return f"{PROVIDER_TYPE}_"

    def full_name(self) -> str:
        return PROVIDER_SOURCE

    def get_provider_schema(self, diags: Diagnostics) -> schema.Schema:
        return schema.Schema(
            version=1,
            attributes=[
                schema.Attribute("region", types.String(), description="AWS region (default: boto3's).", optional=True),
                schema.Attribute(
                    "endpoint_url",
                    types.String(),
                    description="AWS endpoint for S3 and Lambda (default: boto3's, e.g. AWS_ENDPOINT_URL).",
                    optional=True,
                ),
            ],
        )

    def validate_config(self, diags: Diagnostics, config: Config) -> None:
        endpoint = config.get("endpoint_url")
        if isinstance(endpoint, str) and not endpoint.startswith(("http://", "https://")):
            diags.add_error("Invalid endpoint_url", f"{endpoint!r} is not an http(s) URL", path=["endpoint_url"])

    def configure_provider(self, diags: Diagnostics, config: Config) -> None:
        self.region = config.get("region") or None
        self.endpoint_url = config.get("endpoint_url") or None

    def clients(self, region: str | None = None, role_arn: str | None = None) -> dict[str, Any]:
        """``s3_client`` and ``lambda_client`` keyword arguments for the core, in a resource's own ``region``
        (else the provider's) and as its ``role_arn`` (else the provider's own credentials), made once per
        run, region and role (assumed credentials stay in memory, refreshed by botocore)."""
        key = (region or self.region, role_arn or None)
        with self._lock:
            if key not in self._clients:
                s3_client, lambda_client = resource_clients(*key, endpoint_url=self.endpoint_url)
                self._clients[key] = {"s3_client": s3_client, "lambda_client": lambda_client}
            return self._clients[key]

    def get_data_sources(self) -> list[type[DataSource]]:
        return []

    def get_resources(self) -> list[type[Resource]]:
        return [LayerResource]


def main() -> None:
    """Run as Terraform's plugin process (the executable ``alab terraform install`` writes calls this)."""
    # run_provider instantiates tf.provider.ProviderServicer by name; serve our subclass instead.
    tf.provider.ProviderServicer = AlabServicer
    runner.run_provider(AlabProvider(), sys.argv)
