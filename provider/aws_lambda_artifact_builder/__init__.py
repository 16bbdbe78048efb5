"""Build AWS Lambda dependency layers and publish a new version only when the manifest changed."""

__version__ = "0.1.0"
