"""Upload stage: stage ``build/lambda/layer/layer.zip`` at ``layer/layer.zip`` below ``s3dir_lambda``.

Lambda reads a layer's code from S3 while publishing (zips above 50 MB cannot be sent
inline), so the zip is staged at one fixed key; the publish step then checks that the
version Lambda made has the local zip's CodeSha256, which catches a staging object
replaced by someone else in between.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from s3pathlib.api import S3Path

from ..errors import AwsError, LayerError
from ..progress import Stage, forward_logs, get_logger, human_size
from ..typehint import T_PRINTER
from .clients import aws_call, make_clients
from .foundation import LayerPathLayout, LayerS3Layout, coerce_s3dir

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_s3 import S3Client

#: Parts of 16 MB: a 250 MB layer goes up in 16 parts, 4 at a time.
_TRANSFER = TransferConfig(
    multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024, max_concurrency=4
)


def upload_layer_zip_to_s3(
    *,
    s3dir_lambda: S3Path | str,
    path_pyproject_toml: Path | str,
    s3_client: S3Client | None = None,
    metadata: dict[str, str] | None = None,
    verbose: bool = True,
    printer: T_PRINTER = print,
) -> S3Path:
    """Upload the packaged layer zip to the staging key; returns that key's ``S3Path``. The seed's API:
    ``verbose``/``printer`` as ``progress.forward_logs`` takes them."""
    path_zip = LayerPathLayout(path_pyproject_toml=Path(path_pyproject_toml)).path_build_lambda_layer_zip
    s3path = LayerS3Layout(s3dir_lambda=coerce_s3dir(s3dir_lambda)).s3path_temp_layer_zip
    with forward_logs(verbose, printer):
        upload_zip(s3_client=s3_client or make_clients()[0], path_zip=path_zip, s3path=s3path, metadata=metadata)
    return s3path


def upload_zip(
    *,
    s3_client: S3Client,
    path_zip: Path,
    s3path: S3Path,
    metadata: dict[str, str] | None = None,
) -> None:
    """Upload one zip (wherever the pipeline obtained it) to ``s3path`` in parts of 16 MB."""
    if not path_zip.is_file():
        raise LayerError(f"no layer zip at {path_zip}: build and package the layer first")
    size = path_zip.stat().st_size
    get_logger("upload").info("[upload] %s (%s) to %s", path_zip, human_size(size), s3path.uri)
    with Stage("upload", total=size, unit="bytes") as stage:
        _upload(s3_client, path_zip, s3path, metadata, stage)
        stage.finish(f"{human_size(size)} to {s3path.uri}")


def _upload(s3_client: S3Client, path_zip: Path, s3path: S3Path, metadata: dict[str, str] | None, stage: Stage) -> None:
    try:
        with aws_call("s3:PutObject", "upload the layer zip", s3path=s3path):
            s3_client.upload_file(
                str(path_zip),
                s3path.bucket,
                s3path.key,
                ExtraArgs={"ContentType": "application/zip", "Metadata": dict(metadata or {})},
                Callback=stage.advance,  # from boto3's threads: Stage.advance counts under a lock
                Config=_TRANSFER,
            )
    except S3UploadFailedError as e:  # boto3's own wrapper of a failed part
        text = " ".join(str(e).split())
        raise AwsError(
            f"s3dir_lambda {s3path.uri}: could not upload the layer zip: {text}", operation="s3:PutObject"
        ) from None
