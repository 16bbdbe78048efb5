"""Whether this run is CI (``CI=true``): there, a test that needs something absent fails instead of skipping."""

import os

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
