"""Background jobs of a server process: the automatic 催办/督办 of cases nearing and past their deadline, the month figures read
ahead for the wall, the devices' offline round, the MQTT telemetry consumer, the telemetry retention, the hourly early warnings, the 12345 push (and the
demo simulator, its device feed and its vital-sign indicator feed).
Safe to run in several processes at once: the case service's version-guarded updates let one win."""
from __future__ import annotations

import logging
import threading

log = logging.getLogger("ucc.scheduler")


def start_background_jobs(services) -> None:
    """What every serving process runs besides requests: the reminders, and the demo simulator when
    UCC_SIMULATE is on (in scale-out, switch it on in one process only)."""
    start_reminders(services.cases)
    start_wall_figures(services)
    if services.alarms is not None:
        start_offline_round(services.alarms)
    if getattr(services, "warnings", None) is not None:
        start_warnings(services.warnings)
    start_telemetry_retention(services.telemetry, services.settings.telemetry_retention_days)
    if services.settings.mqtt_url:
        start_mqtt_consumer(services)
    if services.hotline is not None and services.settings.hotline_webhook:
        start_hotline_push(services.hotline)
    if services.settings.simulate:
        from demo.backfill import load_profile
        from demo.runner import start_background

        # the day's volume of the demo history (data/demo_history.json): today compares fairly with
        # the usual day on the wall
        profile, calendar = load_profile(), services.cases.calendar
        start_background(services.cases, rate_for=lambda now: profile.live_rate_per_minute(now, calendar))
        log.info("演示事件模拟已开启（UCC_SIMULATE=1）")
        start_device_feed(services)
        start_indicator_feed(services)
        start_emergency_drill(services)


def start_device_feed(services, stop: threading.Event | None = None) -> threading.Thread | None:
    """The demo fleet's telemetry, in-process through the real ingest (demo/device_feed.py): the embedded
    default's devices report and raise alarms with no broker. None when no device reports."""
    from demo.device_feed import FeedRunner

    runner = FeedRunner(services.db, services.telemetry, services.cases.clock)
    if not runner.feed.devices:
        return None

    def round_():
        runner.step()

    return _every(runner.feed.round_s, round_, "ucc-device-feed", stop, at_start=True)


def start_indicator_feed(services, stop: threading.Event | None = None) -> threading.Thread | None:
    """The demo feeder of the city's vital signs (demo/indicator_feed.py), in-process through the real ingest: the
    last 7 days filled at start (what is missing), then each reading as it falls due."""
    from demo.indicator_feed import IndicatorFeeder

    if services.indicators is None:
        return None
    feeder = IndicatorFeeder(services.indicators, services.cases.clock)
    return _every(min(60.0, feeder.round_s), feeder.step, "ucc-indicator-feed", stop, at_start=True)


def start_emergency_drill(services, stop: threading.Event | None = None) -> threading.Thread | None:
    """The demo's emergency command (demo/emergency_drill.py): the simulator's emergencies commanded through the real
    response actions, a round a minute."""
    from demo.emergency_drill import EmergencyDrill

    if services.responses is None:
        return None
    drill = EmergencyDrill(services.responses, services.cases)
    return _every(60.0, drill.step, "ucc-emergency-drill", stop)


def start_wall_figures(services, interval_seconds: float = 30.0,
                       stop: threading.Event | None = None) -> threading.Thread:
    """Keeps the month's figures (figures/rollup.py) read ahead: at start, on a new day and on the
    periodic full re-read the wall's requests would otherwise wait ~0.2 s at a million cases."""
    from figures.rollup import keep_warm

    return _every(interval_seconds, lambda: keep_warm(services.db, services.cases.clock()), "ucc-wall-figures",
                  stop, at_start=True)


def start_mqtt_consumer(services):
    """The telemetry consumer (sensing_mqtt/), in one process per machine (a lock file under var/); None in the others."""
    from config import VAR_DIR
    from sensing_mqtt.consumer import start_consumer

    s = services.settings
    return start_consumer(services.telemetry, s.mqtt_url, client_id=s.mqtt_client_id, lock_dir=str(VAR_DIR),
                          indicators=services.indicators)


def start_telemetry_retention(ingest, retention_days: int, interval_seconds: float = 3600.0,
                              stop: threading.Event | None = None) -> threading.Thread:
    """Once an hour: raw telemetry older than UCC_TELEMETRY_RETENTION_DAYS rolled into hourly rows and deleted.
    Several processes may run it at once: each rolls up only the rows its own DELETE … RETURNING removed."""

    def round_():
        n = ingest.roll_up(retention_days)
        if n:
            log.info("遥测保留：%d 条 %d 天前的原始读数已汇总为小时值并删除", n, retention_days)

    return _every(interval_seconds, round_, "ucc-telemetry-retention", stop)


def start_hotline_push(hotline, stop: threading.Event | None = None) -> threading.Thread:
    """The 12345 push (cases/hotline.py): every round_seconds, the outbox's changes of hotline tickets queued and
    the due deliveries sent. Every process runs it; the push's lease (a row) lets one of them work at a time."""

    def round_():
        n = hotline.run_round()
        if n:
            log.info("12345 推送送达 %d 条", n)

    return _every(hotline.rules.push.round_seconds, round_, "ucc-hotline-push", stop, at_start=True)


def start_reminders(cases, interval_seconds: float = 60.0, stop: threading.Event | None = None) -> threading.Thread:
    def round_():
        n = cases.remind_due()
        if n:
            log.info("自动催办/督办案件 %d 件次", n)

    return _every(interval_seconds, round_, "ucc-reminders", stop)


def start_offline_round(alarms, interval_seconds: float = 60.0, stop: threading.Event | None = None) -> threading.Thread:
    """Devices silent beyond their type's allowed silence go offline with an offline alarm; alarms of dispatching
    rules still without their case get it (sensing/alarms.py)."""

    def round_():
        n = alarms.offline_round()
        if n:
            log.info("设备离线 %d 台", n)

    return _every(interval_seconds, round_, "ucc-offline", stop)


def start_warnings(warnings, interval_seconds: float = 3600.0,
                   stop: threading.Event | None = None) -> threading.Thread:
    """The early warnings (foresight/warnings.py), at start and then hourly: each finding is stored once (its dedupe
    key), so several processes running it at once store nothing twice."""

    def round_():
        stored = warnings.run()
        if stored:
            log.info("新预警 %d 条", len(stored))

    return _every(interval_seconds, round_, "ucc-warnings", stop, at_start=True)


def _every(interval_seconds: float, job, name: str, stop: threading.Event | None = None,
           at_start: bool = False) -> threading.Thread:
    """Runs `job` every interval_seconds in a daemon thread until `stop` is set (first at once with
    `at_start`); a failed round is logged and the next one runs as usual."""
    stop = stop or threading.Event()

    def loop():
        if at_start or not stop.wait(interval_seconds):
            while True:
                try:
                    job()
                except Exception:  # noqa: BLE001 - a failed round must not stop the next one
                    log.exception("%s: round failed", name)
                if stop.wait(interval_seconds):
                    return

    t = threading.Thread(target=loop, name=name, daemon=True)
    t.start()
    return t
