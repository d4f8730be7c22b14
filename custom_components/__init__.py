"""Home Assistant custom integrations of this repository (a package, for tests and mypy)."""
