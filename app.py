"""Composition root: builds the Flask server, the Dash app, the API and the CLI from the settings.

`python app.py` runs the embedded default (SQLite under var/, demo city seeded on first start);
`flask --app app COMMAND` runs the commands of CONTRACT.md, on an app that does not serve (no Dash
pages, callbacks, sign-in or API: see create_app).
"""
from __future__ import annotations

import functools
import logging

from flask import Flask

from api.json_provider import OrjsonProvider
from config import Settings
from data import files
from data.area_directory import AreaDirectory
from cases.hotline import HotlineService
from cases.service import CaseService
from data.db import Database
from emergency.response import ResponseService
from sensing.alarms import AlarmService
from sensing.registry import DeviceRegistry
from emergency.resources import ResourceService
from foresight.forecast import ForecastService
from foresight.whatif import WhatIfService
from sensing.indicators import IndicatorIngest
from sensing.telemetry import TelemetryIngest
from web.services import Services, install, services


class UccFlask(Flask):
    """Flask with the API's faster JSON (api/json_provider.py)."""

    json_provider_class = OrjsonProvider


def create_app(settings: Settings | None = None, serve: bool | None = None) -> Flask:
    """The app. ``serve=False``: only the services and the commands, for a process that handles no
    request (about 30 MB less: no Dash, pages, callbacks, API, sign-in; bench/bench_imports.py).
    ``None`` (what the Flask CLI, wsgi.py and app.py pass): False exactly when the Flask CLI loads
    the app to run one of the app's own commands (:func:`_loaded_for_an_app_command`)."""
    settings = settings or Settings.from_env()
    if serve is None:
        serve = not _loaded_for_an_app_command()
    server = UccFlask(__name__)
    server.config.update(SECRET_KEY=settings.secret_key, JSON_AS_ASCII=False)
    server.json.ensure_ascii = False
    db = Database(settings.database_url)
    areas = AreaDirectory(db)
    cases, registry = CaseService(db, areas), DeviceRegistry(db, areas)
    alarms = AlarmService(db, areas, cases, registry)
    responses = ResponseService(db, areas, cases)  # adds each emergency case's `response` to the case objects
    # telemetry stored → the alarm engine, once per batch after it commits (docs/devices.md)
    install(server, Services(settings=settings, db=db, areas=areas, cases=cases, devices=registry,
                             telemetry=TelemetryIngest(db, registry.types, on_stored=alarms.on_stored),
                             alarms=alarms, responses=responses, indicators=IndicatorIngest(db, files.city_indicators, lambda: cases.clock()),
                             resources=ResourceService(db, areas, cases),
                             forecast=ForecastService(db, files.calendar(), files.forecast_rules(), clock=lambda: cases.clock())))
    built = services(server)
    built.warnings = _warnings(db, cases, built.forecast)
    # the simulator's arrivals are the forecast's (it falls back to seasonal-naive when a forecast fails)
    built.whatif = WhatIfService(db, built.forecast.forecast, clock=lambda: cases.clock())
    # the 12345 exchange: tickets and callbacks in, every change of a ticket pushed when UCC_HOTLINE_WEBHOOK is set
    built.hotline = HotlineService(db, cases, settings.hotline_webhook, files.hotline_rules(settings.hotline_rules_path))
    from commands import register_commands

    register_commands(server)
    if not serve:
        if settings.redis_url:
            # A command that moves cases (simulate) tells the serving processes through Redis; without
            # Redis no other process can hear this one's events, so the bus is not built at all.
            from live import init_live

            init_live(server, services(server))
        return server

    from api.v1 import bp as api_v1
    from api.v1 import init_limits

    from web.errors import register_app_fallback

    from api.indicators import bp as api_indicators

    server.register_blueprint(api_v1)
    server.register_blueprint(api_indicators)
    from api.devices import bp as api_devices  # /api/v1/device-types, /api/v1/devices[/<id>], /api/v1/alarms
    server.register_blueprint(api_devices)
    from api.emergency import bp as api_emergency  # /api/v1/plans, /api/v1/emergencies, report drafts
    server.register_blueprint(api_emergency)
    from api.resources import bp as api_resources  # /api/v1/resources[/<id>], /api/v1/events/<id>/resources[/<allocation>]
    server.register_blueprint(api_resources)
    from api.whatif import bp as api_whatif  # POST /api/v1/whatif, GET /api/v1/whatif/<id>
    server.register_blueprint(api_whatif)
    from api.photos import bp as api_photos  # GET /photos/<id>
    server.register_blueprint(api_photos)
    from api.assessment_report import bp as api_assessment_report  # GET /api/v1/assessment/report
    server.register_blueprint(api_assessment_report)
    from api.warnings import bp as api_warnings  # /api/v1/warnings[/<id>[/acknowledge|/dismiss|/campaign]]
    server.register_blueprint(api_warnings)
    from api.forecast import bp as api_forecast  # GET /api/v1/forecast
    server.register_blueprint(api_forecast)
    from api.open311 import bp as api_open311  # Open311 GeoReport v2: /open311/v2/…, /open311/discovery
    from api.open311 import init_limits as init_open311_limits

    server.register_blueprint(api_open311)

    from api.hotline import bp as api_hotline  # /api/v1/hotline/tickets[/<no>[/callback]], /api/v1/hotline/deliveries
    server.register_blueprint(api_hotline)

    from api.docs import bp as api_docs  # GET /api/v1/openapi.json (no token), GET /api/docs (Swagger UI)
    server.register_blueprint(api_docs)
    from layouts.wall_base import bp as wall_base  # GET /wall/base.json
    server.register_blueprint(wall_base)
    register_app_fallback(server)
    server.add_url_rule("/healthz", "healthz", _healthz)
    init_limits(server)
    init_open311_limits(server)
    from web.validation import install as install_screen

    install_screen(server)  # 64-bit ids, clean bounded text, sane JSON: before any handler

    dash_app = build_dash(server)
    server.extensions["ucc_dash"] = dash_app  # tests read its callbacks (the guard is handed dash_app)
    from live import init_live

    init_live(server, services(server))  # Socket.IO on this server, fed by the case outbox
    from auth import init_auth

    init_auth(server, exempt_from_csrf=(api_v1, api_indicators, api_devices, api_emergency, api_resources, api_whatif, api_warnings, api_forecast, api_open311, api_hotline))  # sign-in, CSRF and the page guard (after live: it hooks the live connect)
    from public import init_public

    init_public(server)  # /public: the citizens' page (no account; the guard lets it through, CSRF applies)
    from web.limits import BodyLimits

    BodyLimits.install(server, settings)  # before the proxy fix: no body over its limit, short or malformed reaches a view
    from callbacks.guard import install as guard_callbacks

    guard_callbacks(server, dash_app)  # a callback only for the roles that may open its page (after sign-in)
    if settings.behind_proxy:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Outermost, so Socket.IO's middleware sees the client's address too. One hop (nginx), which
        # replaces X-Forwarded-For with the address it saw (deploy/nginx.conf.template).
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=1, x_proto=1)
    return server


def _warnings(db, cases, forecast):
    """The early warnings over the detectors of docs/foresight.md (rules read on first use)."""
    from foresight.warnings import WarningService, detector

    def surge(db_, at, _rules):
        """Surges against the app's forecasts (their rules are the forecast's; what a day's first check reads of the
        days before is kept by that service for the day's later checks)."""
        from foresight import surge as surges

        return surges.detect(db_, at, service=forecast)

    # imported at the first run (numpy, scipy, PySAL): a command's app stays light
    return WarningService(db, cases, [surge, detector("foresight.hotspots"), detector("foresight.recurrent")])


def _loaded_for_an_app_command() -> bool:
    """True when the Flask CLI loads the app to look up one of the app's own commands
    (`flask --app app import-cases …`, or `flask --help` listing them): click's current context is
    then Flask's command group itself. Flask's own `run`, `shell` and `routes` load the app inside
    their command's context, and wsgi.py, app.py and the tests call create_app outside click: all of
    those get the serving app."""
    import click
    from flask.cli import FlaskGroup

    ctx = click.get_current_context(silent=True)
    return ctx is not None and isinstance(ctx.command, FlaskGroup)


def _healthz():
    """For load balancers and process managers: 200 when the database answers, 503 otherwise."""
    from flask import jsonify
    from sqlalchemy import text

    try:
        with services().db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return jsonify(ok=False, message="数据库不可用"), 503
    return jsonify(ok=True)


@functools.cache
def _dash_class():
    """UccDash, defined on first use: Dash (and plotly under it) is imported only by an app that
    serves, never by a command's."""
    import dash

    class UccDash(dash.Dash):
        """Dash whose index page loads only the script bundles the requested page uses (layouts/scripts.py)
        and, for the wall, starts reading its figures while the browser loads the scripts."""

        def interpolate_index(self, **kwargs):
            from flask import request

            from auth import current_principal
            from layouts.scripts import scripts_for

            kwargs["scripts"] = scripts_for(request.path, kwargs["scripts"])
            if request.path.rstrip("/") == "/wall" and current_principal() is not None:
                from figures.wall import prefetch_snapshot

                prefetch_snapshot(services())
            return super().interpolate_index(**kwargs)

    return UccDash


def build_dash(server: Flask):
    from layouts import register_pages
    from layouts.scripts import SOCKET_IO, VENDOR_DIR, socket_io_script

    app = _dash_class()(
        __name__, server=server, use_pages=True, pages_folder="", serve_locally=True,
        title="城市运行管理平台", update_title=None, suppress_callback_exceptions=True,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
        assets_path_ignore=[f"^{VENDOR_DIR}$"],  # served, but not loaded in Dash's alphabetical order
    )
    # The official Socket.IO client, local, before every asset (live_client.js uses it): layouts/scripts.py
    app.config.external_scripts.append(socket_io_script(app.get_asset_url(SOCKET_IO), app.config.assets_folder))
    register_pages()
    from layouts.shell import app_shell

    app.layout = app_shell
    import callbacks

    callbacks.attach(app)  # this app's own copy of every callback (Dash keeps only one app's)

    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = create_app()
    app_services = services(server)
    from data.schema import init_db
    from demo.seed import seed_demo

    init_db(app_services.db)
    seed_demo(app_services.db, progress=lambda m: logging.getLogger("ucc").info(m))
    _seed_history(app_services)
    from scheduler import start_background_jobs

    start_background_jobs(app_services)
    s = app_services.settings
    logging.getLogger("ucc").info("城市运行管理平台 http://%s:%s/", s.host, s.port)
    from live import run_server

    run_server(server, host=s.host, port=s.port)  # HTTP, Dash and Socket.IO (/live) in one process


def _seed_history(services: Services) -> None:
    """The demo city's last UCC_SEED_HISTORY days (default 90), filled before serving: ~1 minute on a
    fresh database, a second or two on a later start (only the days missing since); the simulator then
    carries on from now. A failure is logged and the server starts anyway."""
    log = logging.getLogger("ucc")
    days = services.settings.seed_history_days
    if days <= 0:
        return
    from demo.backfill import first_run_history

    try:
        report = first_run_history(services.cases, days, echo=log.info)
    except Exception:  # noqa: BLE001 - the platform must come up even without its demo history
        log.exception("演示历史补录失败，服务照常启动")
        return
    if report is not None and report.cases:
        log.info(report.summary())


if __name__ == "__main__":
    main()
