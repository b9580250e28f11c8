"""Tests of the payments_stripe plugin (a package, so its conftest has a name of its own)."""
