"""Alembic's environment: hookshop runs every command through ``engine.schema`` (see its docstring)."""

from alembic import context

from engine.schema import run_environment

run_environment(context)
