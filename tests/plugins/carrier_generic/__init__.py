"""carrier_generic tests (a package: its conftest does not shadow tests/conftest.py)."""
