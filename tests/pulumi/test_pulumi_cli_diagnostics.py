"""Where a dynamic provider's stderr and `pulumi.log` calls appear under the real `pulumi` CLI.

Found here (pulumi v3.274.1): the engine reads the provider plugin's stderr line by line and reports each line as
an `info#err` diagnostic with no resource URN, so the CLI lists it under the stack resource
(`pulumi:pulumi:Stack (<project>-<stack>)`), in the progress view and in the "Diagnostics:" section of
`pulumi preview` / `pulumi up`. The provider process has no engine connection, so `pulumi.log.info/warn` fall
back to stderr with an `info: ` / `warning: ` prefix: the same place, never attached to the resource.
`pulumi preview --diff` (the diff view) prints none of them: what must be visible there has to be a property,
hence LambdaLayer's `packages` input.
"""

from __future__ import annotations

from pathlib import Path

from pulumi_cli import PulumiProject

STACK_RESOURCE = "pulumi:pulumi:Stack (probe-dev):"
LINES = ("probe-stderr-{op}", "info: probe-log-info-{op}", "warning: probe-log-warn-{op}")


def test_provider_stderr_and_pulumi_log_are_stack_diagnostics_absent_from_the_diff_view(
    pulumi_bin: Path, tmp_path: Path
) -> None:
    from log_probe import LogProbe

    n = {"value": 1}
    project = PulumiProject.create(
        pulumi_bin,
        tmp_path,
        name="probe",
        program=lambda: LogProbe("probe", n["value"]) and None,
        extra_env={"PYTHONPATH": str(Path(__file__).resolve().parent)},
    )
    project.stack_init("dev", {})
    stack = project.stack("dev")
    events: list = []
    up = stack.up(on_event=events.append)
    diags = [e.diagnostic_event for e in events if e.diagnostic_event and e.diagnostic_event.severity != "debug"]
    for line in LINES:
        text = line.format(op="create")
        (event,) = [d for d in diags if d.message.strip() == text]
        assert event.severity == "info#err" and event.urn is None  # not attached to the resource
        assert text in up.stdout.split("Diagnostics:")[1].split(STACK_RESOURCE)[1]

    n["value"] = 2
    preview = stack.preview()
    diagnostics = preview.stdout.split("Diagnostics:")[1]
    assert diagnostics.lstrip().startswith(STACK_RESOURCE)
    assert all(line.format(op="diff") in diagnostics for line in LINES)
    diff_view = stack.preview(diff=True)
    assert "~ n: 1 => 2" in diff_view.stdout
    assert not any(line.format(op="diff") in diff_view.stdout for line in LINES)
