"""Thin Dash callbacks: read inputs, call a service, shape the outputs. Imported by app.build_dash."""
from callbacks import cockpit, maps, wall  # noqa: F401
