"""The rule of issue 13 §3: inside the layer package no function takes a ``printer`` or ``verbose``.

Internal code logs with ``progress.get_logger(stage)`` and reports progress with ``progress.Stage``; only
the seed's public API keeps the pair, as an adapter (``progress.forward_logs``). Every function, method
and class of every module of ``layer/`` is inspected, so a new one that threads a printer fails here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator

import aws_lambda_artifact_builder.layer as layer_package
from aws_lambda_artifact_builder.layer.foundation import BaseLogger

#: The seed's public API, where ``verbose``/``printer`` stay as the adapter onto logging.
SEED_API = {
    "foundation.BaseLogger",
    "foundation.LayerPathLayout.copy_file",
    "foundation.LayerPathLayout.copy_build_script",
    "foundation.LayerPathLayout.copy_pyproject_toml",
    "foundation.LayerPathLayout.copy_poetry_lock",
    "foundation.LayerPathLayout.copy_uv_lock",
    "build.build_layer_artifacts_in_local",
    "build.build_layer_artifacts_using_pip_in_local",
    "build.build_layer_artifacts_using_poetry_in_local",
    "build.build_layer_artifacts_using_uv_in_local",
    "build_container.build_layer_artifacts_in_container",
    "build_container.build_layer_artifacts_using_pip_in_container",
    "build_container.build_layer_artifacts_using_poetry_in_container",
    "build_container.build_layer_artifacts_using_uv_in_container",
    "workflow.deploy_layer",
    "publish.publish_layer_version",
    "targets.deploy_layer_to_targets",
    "targets.push_layer_artifact",
    # in api.py's public surface since the seed's first builder and zipper (tests and benchmarks call them)
    "package.create_layer_zip_file",
    "upload.upload_layer_zip_to_s3",
}


def _callables() -> Iterator[tuple[str, object]]:
    for info in pkgutil.iter_modules(layer_package.__path__):
        module = importlib.import_module(f"{layer_package.__name__}.{info.name}")
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__:
                continue  # imported from elsewhere: inspected where it is defined
            if inspect.isfunction(obj):
                yield f"{info.name}.{name}", obj
            elif inspect.isclass(obj):
                yield f"{info.name}.{name}", obj
                for attr, member in vars(obj).items():
                    if inspect.isfunction(member) and attr != "__init__":
                        yield f"{info.name}.{name}.{attr}", member


def _threads_a_printer(obj: object) -> bool:
    try:
        parameters = inspect.signature(obj).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return bool({"printer", "verbose"} & set(parameters))


def test_no_internal_function_of_the_layer_package_takes_a_printer_or_verbose():
    offenders = sorted(
        name
        for name, obj in _callables()
        if _threads_a_printer(obj)
        and name not in SEED_API
        and not (inspect.isclass(obj) and issubclass(obj, BaseLogger))  # the seed's classes built on BaseLogger
    )
    assert offenders == [], f"log with progress.get_logger and report with progress.Stage instead: {offenders}"


def test_the_seed_api_keeps_its_adapter():
    """The list above is not stale: each seed entry exists and still takes the pair."""
    found = dict(_callables())
    assert {name for name in SEED_API if not _threads_a_printer(found.get(name))} == set()


def test_the_rule_sees_a_function_that_threads_a_printer():
    def internal(*, printer: object = print) -> None: ...

    def clean(*, credentials: object = None) -> None: ...

    assert _threads_a_printer(internal) and not _threads_a_printer(clean)
