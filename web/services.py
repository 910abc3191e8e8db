"""The app's services and the one way an edge looks them up in a request, a callback or a command."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:
    from cases.hotline import HotlineService
    from cases.service import CaseService
    from config import Settings
    from data.area_directory import AreaDirectory
    from data.db import Database
    from emergency.resources import ResourceService
    from emergency.response import ResponseService
    from foresight.whatif import WhatIfService
    from foresight.warnings import WarningService
    from foresight.forecast import ForecastService
    from sensing.alarms import AlarmService
    from sensing.indicators import IndicatorIngest
    from sensing.registry import DeviceRegistry
    from sensing.telemetry import TelemetryIngest

EXTENSION = "ucc"  # the key under Flask's app.extensions


@dataclass
class Services:
    """What the edges (pages, API, CLI) reach the core through; one per app (made in app.create_app)."""

    settings: "Settings"
    db: "Database"
    areas: "AreaDirectory"
    cases: "CaseService"
    devices: "DeviceRegistry"
    telemetry: "TelemetryIngest"
    alarms: "AlarmService | None" = None  # the alarm engine and lifecycle (sensing/alarms.py)
    indicators: "IndicatorIngest | None" = None  # the city's vital signs in and out (sensing/indicators.py)
    responses: "ResponseService | None" = None  # emergency responses under their plans (emergency/response.py)
    resources: "ResourceService | None" = None  # emergency resources: nearest, allocation (emergency/resources.py)
    whatif: "WhatIfService | None" = None  # the what-if simulator's runs (foresight/whatif.py)
    warnings: "WarningService | None" = None  # early warnings: surges, hotspots, recurring spots (foresight/warnings.py)
    forecast: "ForecastService | None" = None  # expected case counts with intervals (foresight/forecast.py)
    hotline: "HotlineService | None" = None  # the 12345 exchange: tickets, callbacks, the push (cases/hotline.py)


def services(app: Flask | None = None) -> Services:
    """The services of `app`, or of the app handling the current request or command."""
    return (app or current_app).extensions[EXTENSION]


def install(app: Flask, built: Services) -> Services:
    app.extensions[EXTENSION] = built
    return built
