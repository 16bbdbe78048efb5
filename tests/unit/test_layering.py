"""The package's layers, and that no module imports upward (read from the source, so nothing is imported).

From the bottom (README "Layout" says the same):

0. base — ``constants``, ``typehint``, ``errors``, ``progress``: names, enums, the error model, logging
   and progress events;
1. pure core — ``layer/target``, ``layer/facts``: values (a target, the facts of a published version,
   the record); they import only layers 0-1 and no AWS library, no ``subprocess``;
2. local work — ``layer/foundation``, ``manifest``, ``runtime_set``, ``lock_export``, ``runner``, ``inputs``,
   ``spec``, ``package``, ``slim``, ``source_tree``, ``install_plan``, ``build*``, ``install_errors``: read locks, check inputs, build and
   zip on this machine; and, over those values, the plan's pure decision (``layer/decide``) and the
   deploy pipeline's stages over injected effects (``layer/pipeline``), which import no AWS library;
3. AWS effects — ``layer/clients``, ``record``, ``claim``, ``upload``, ``publish``, ``history``,
   ``evidence``, ``store``: S3 and Lambda calls;
4. composition — ``layer/workflow`` (``plan_layer``/``deploy_layer``, the real effects given to the
   pipeline) and ``layer/targets`` (one deploy per region/account);
5. front ends — ``api`` (the public surface), ``cli`` with ``cli_targets`` and ``console``, ``pulumi_provider``,
   ``terraform_provider/*``.

A module imports from its own layer or below, at run time and under ``if TYPE_CHECKING:`` alike (an
annotation naming a type of a higher layer is the same dependency). Front ends do not import each other,
except through ``api`` and the CLI's ``alab terraform install`` (``terraform_provider.install``). Every
module is listed: a new one fails the first test until it is placed in a layer.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import aws_lambda_artifact_builder

DIR_PACKAGE = Path(aws_lambda_artifact_builder.__file__).parent
PACKAGE = "aws_lambda_artifact_builder"

LAYERS: dict[str, int] = {
    "__init__": 0, "constants": 0, "typehint": 0, "errors": 0, "progress": 0,
    "layer": 1, "layer.target": 1, "layer.facts": 1,
    "layer.decide": 2, "layer.pipeline": 2, "layer.foundation": 2, "layer.manifest": 2, "layer.inputs": 2, "layer.spec": 2, "layer.package": 2,
    "layer.source_tree": 2, "layer.install_plan": 2, "layer.slim": 2,
    "layer.runner": 2, "layer.runtime_set": 2, "layer.lock_export": 2,
    "layer.build": 2, "layer.build_container": 2, "layer.build_container_plan": 2,
    "layer.build_container_runner": 2, "layer.build_container_script": 2, "layer.install_errors": 2,
    "layer.wheel_record": 2,
    "layer.clients": 3, "layer.record": 3, "layer.claim": 3, "layer.upload": 3, "layer.publish": 3,
    "layer.history": 3, "layer.evidence": 3, "layer.store": 3,
    "layer.workflow": 4, "layer.targets": 4,
    "api": 5, "cli": 5, "cli_targets": 5, "console": 5, "__main__": 5, "pulumi_provider": 5,
    "terraform_provider": 5, "terraform_provider.install": 5, "terraform_provider.provider": 5,
    "terraform_provider.resource": 5, "terraform_provider.servicer": 5,
}  # fmt: skip
PURE = {name for name, layer in LAYERS.items() if layer == 1}
#: Above the pure values but still free of AWS: the plan's decision and the deploy pipeline's stages.
NO_AWS = PURE | {"layer.decide", "layer.pipeline"}
FRONT_ENDS = ("api", "cli", "cli_targets", "__main__", "pulumi_provider", "terraform_provider")
#: Libraries that talk to AWS or run processes: never imported by the pure core.
EFFECT_LIBRARIES = ("boto3", "botocore", "s3transfer", "s3pathlib", "subprocess", "pulumi", "tf", "grpc")


def _module_name(path: Path) -> str:
    parts = path.relative_to(DIR_PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1]) if parts[-1] == "__init__" and len(parts) > 1 else ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(path: Path, module: str, *, type_checking: bool = False) -> list[str]:
    """Absolute names of what a module imports at run time (at its top or inside functions); with
    ``type_checking``, also what it imports under ``if TYPE_CHECKING:`` (for annotations only)."""
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    if module == "__init__":
        package = []
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node) and not type_checking:
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append(node.module or "")
            else:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                prefix = ".".join([PACKAGE, *base])
                if node.module:
                    found.append(f"{prefix}.{node.module}")
                else:  # ``from . import api``
                    found.extend(f"{prefix}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _internal(name: str) -> str | None:
    """The package-relative module of an import (``None`` for other libraries)."""
    if name == PACKAGE:
        return "__init__"
    if not name.startswith(PACKAGE + "."):
        return None
    inner = name[len(PACKAGE) + 1 :]
    while inner and inner not in LAYERS and not (DIR_PACKAGE / (inner.replace(".", "/") + ".py")).exists():
        inner = inner.rpartition(".")[0]  # ``from .x import name`` where name is not a module
    return inner or None


@functools.cache
def _modules(type_checking: bool = False) -> dict[str, list[str]]:
    return {
        _module_name(path): _runtime_imports(path, _module_name(path), type_checking=type_checking)
        for path in sorted(DIR_PACKAGE.rglob("*.py"))
    }


def _is_front_end(module: str) -> bool:
    return module.split(".")[0] in FRONT_ENDS


def test_every_module_is_found_and_the_listed_ones_exist():
    modules = _modules()
    assert {"layer.pipeline", "layer.workflow", "pulumi_provider", "terraform_provider.resource"} <= set(modules)
    assert set(LAYERS) <= set(modules), f"listed but gone: {sorted(set(LAYERS) - set(modules))}"
    assert set(modules) <= set(LAYERS), f"new modules to place in a layer: {sorted(set(modules) - set(LAYERS))}"


def test_no_module_imports_a_layer_above_its_own_even_for_annotations():
    upward = [
        (module, target, LAYERS[module], LAYERS[target])
        for module, imports in _modules(type_checking=True).items()
        if module in LAYERS
        for target in filter(None, map(_internal, imports))
        if target in LAYERS and LAYERS[target] > LAYERS[module]
    ]
    assert upward == [], "(module, imports, its layer, their layer): " + repr(upward)


def test_nothing_in_layer_imports_a_front_end_and_front_ends_meet_only_through_api():
    allowed = {
        ("cli", "terraform_provider.install"),
        ("cli", "cli_targets"),
        ("cli_targets", "cli"),
        ("__main__", "cli"),
    }
    wrong = []
    for module, imports in _modules().items():
        for target in filter(None, map(_internal, imports)):
            if not _is_front_end(target) or (module, target) in allowed:
                continue
            if target == "api" and _is_front_end(module):
                continue
            same_front_end = _is_front_end(module) and module.split(".")[0] == target.split(".")[0]
            if not same_front_end:
                wrong.append((module, target))
    assert wrong == []


def test_the_pure_core_imports_no_aws_library_and_runs_no_process():
    wrong = [
        (module, name)
        for module, imports in _modules().items()
        if module in PURE
        for name in imports
        if name.split(".")[0] in EFFECT_LIBRARIES
    ]
    assert wrong == []


def test_the_decision_and_the_pipeline_import_no_aws_library():
    aws = ("boto3", "botocore", "s3transfer", "s3pathlib", "mypy_boto3_s3", "mypy_boto3_lambda")
    wrong = [
        (module, name)
        for module, imports in _modules(type_checking=True).items()
        if module in NO_AWS
        for name in imports
        if name.split(".")[0] in aws
    ]
    assert wrong == []


def test_the_in_container_script_imports_nothing_of_the_package():
    """It runs inside the build container, where the package is not installed."""
    imports = _modules()["layer.build_container_script"]
    assert [name for name in imports if _internal(name)] == []


def test_the_checker_sees_an_upward_import(tmp_path: Path):
    """The checker itself can fail: a pure module importing the workflow is seen, and so is one under
    TYPE_CHECKING (counted with ``type_checking``, which the layering test uses)."""
    path = tmp_path / "probe.py"
    path.write_text(
        "from typing import TYPE_CHECKING\nfrom .workflow import deploy_layer\nimport boto3\n"
        "if TYPE_CHECKING:\n    from .publish import PublishedVersion\n"
    )
    imports = [name for name in _runtime_imports(path, "layer.probe") if name != "typing"]
    assert imports == [f"{PACKAGE}.layer.workflow", "boto3"]
    assert _internal(imports[0]) == "layer.workflow" and LAYERS["layer.workflow"] > LAYERS["layer.facts"]
    annotated = [name for name in _runtime_imports(path, "layer.probe", type_checking=True) if name != "typing"]
    assert annotated == [f"{PACKAGE}.layer.workflow", "boto3", f"{PACKAGE}.layer.publish"]
    assert LAYERS["layer.publish"] > LAYERS["layer.facts"]
