"""Build AWS Lambda dependency layers and publish a new version only when the manifest changed."""

import logging as _logging

__version__ = "0.1.0"

# A library logs, the application decides where logs go: nothing is printed unless it configures logging.
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
