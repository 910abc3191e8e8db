"""What every command shares: a refusal that prints its message and exits non-zero."""
from __future__ import annotations

import sys

import click


def fail(message: str, code: int = 1):
    click.echo(message, err=True)
    sys.exit(code)
