"""Layer pipeline stages: foundation, manifest, build, package, upload, publish, workflow."""
