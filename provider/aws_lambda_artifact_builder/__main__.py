"""``python -m aws_lambda_artifact_builder``: the same as the ``alab`` command."""

from .cli import main

raise SystemExit(main())
