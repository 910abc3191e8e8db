"""Thin Dash callbacks: read inputs, call a service, shape the outputs. Imported by app.build_dash."""
from callbacks import cockpit, maps, wall  # noqa: F401
from callbacks import unit  # noqa: F401
from callbacks import report  # noqa: F401
from callbacks import console  # noqa: F401
