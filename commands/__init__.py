"""The Flask CLI of CONTRACT.md (`flask --app app COMMAND`): one module per room the commands act on."""
from __future__ import annotations

from flask import Flask

from commands import cases, demo, devices, emergency, figures, forecast, grid, people, schema, warnings

COMMANDS = [
    schema.init_db_command, schema.sync_catalog_command,
    demo.seed_demo_command, demo.simulate_command, demo.backfill_command,
    grid.import_grid_command, grid.export_grid_command,
    cases.import_cases_command,
    devices.import_devices_command,
    devices.simulate_devices_command,
    emergency.import_resources_command,
    figures.kpi_command, figures.assessment_report_command, figures.import_indicators_command, figures.indicators_command,
    people.create_token_command, people.revoke_token_command, people.create_user_command,
    people.disable_user_command,
    forecast.forecast_command,
    warnings.warn_command,
]


def register_commands(app: Flask) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)
