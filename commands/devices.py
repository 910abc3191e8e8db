"""Commands on the device registry: import-devices, and simulate-devices (the fleet's telemetry over MQTT)."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from commands.common import fail
from web.services import services


@click.command("import-devices")
@with_appcontext
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def import_devices_command(path: Path):
    """Load devices from CSV (device_id,type,name,lon,lat,unit_code) or GeoJSON points (all or nothing)."""
    from data.schema import init_db
    from sensing.importer import DeviceImportError, import_devices

    svc = services()
    init_db(svc.db)
    try:
        report = import_devices(svc.db, svc.areas, svc.devices.types(), path)
    except DeviceImportError as exc:
        fail(str(exc))
    click.echo(report.summary())


def _per_type(specs: tuple[str, ...]) -> dict[str, int]:
    out = {}
    for spec in specs:
        code, sep, n = spec.partition("=")
        if not sep or not n.strip().isdigit():
            fail(f"--devices 应为 类型=数量（如 manhole_cover=100），收到 {spec}")
        out[code.strip()] = int(n)
    return out


@click.command("simulate-devices")
@with_appcontext
@click.option("--mqtt", "url", default=None, help="the broker, mqtt://HOST:PORT (default UCC_MQTT_URL, else mqtt://127.0.0.1:1883)")
@click.option("--rate", type=float, default=None, help="messages a second, the fleet in turn (a load generator); default: each type at its reporting period")
@click.option("--duration", type=float, default=None, help="seconds to run (default: until interrupted)")
@click.option("--devices", "devices_", multiple=True, metavar="TYPE=N", help="only the first N registered devices of TYPE (repeatable)")
@click.option("--fault", "faults", multiple=True, metavar="CODE[=DEVICE]", help="start a fault of data/demo_device_feed.json (or silence) at once, on DEVICE or the first device of its type (repeatable)")
@click.option("--round", "round_s", type=float, default=None, help="seconds between rounds (default: round_seconds of data/demo_device_feed.json)")
@click.option("--seed", type=int, default=20261207)
def simulate_devices_command(url, rate, duration, devices_, faults, round_s, seed):
    """Publish the registered fleet's telemetry to ucc/devices/<id>/telemetry (QoS 1), with the demo feed's faults."""
    from data import files
    from data.devices import reporting_fleet
    from demo.device_feed import DeviceFeed
    from sensing_mqtt.simulator import DeviceSimulator

    svc = services()
    url = url or svc.settings.mqtt_url or "mqtt://127.0.0.1:1883"
    settings = dict(files.demo_device_feed())
    if round_s is not None:
        settings["round_seconds"] = round_s
    limits = _per_type(devices_)
    with svc.db.session() as s:
        if limits:
            fleet = [row for code, n in limits.items() for row in reporting_fleet(s, offline_too=True, type_=code, limit=n)]
        else:
            fleet = reporting_fleet(s, offline_too=True)
    now = svc.cases.clock()
    feed = DeviceFeed(fleet, settings, now, seed)
    if not feed.devices:
        fail("没有可模拟的设备（先 import-devices 或 seed-demo；维护中的设备不发送）")
    codes = feed.fault_codes()
    for spec in faults:
        code, _sep, device_id = spec.partition("=")
        if code != "silence" and code not in codes:
            fail(f"未知的故障 {code}；可用：silence、{'、'.join(sorted(codes))}")
        if not device_id:
            want = codes.get(code)
            device_id = next((d.id for d in feed.devices if want is None or d.type == want), "")
            if not device_id:
                fail(f"没有 {want} 类型的设备可以模拟故障 {code}")
        try:
            click.echo(f"故障 {code}：设备 {feed.force(device_id, code, now)}")
        except KeyError as exc:
            fail(str(exc.args[0]))
    sim = DeviceSimulator(feed, url)
    try:
        sim.connect()
    except (OSError, ConnectionError) as exc:
        fail(f"无法连接 MQTT 代理 {url}：{exc}")
    click.echo(f"模拟 {len(feed.devices)} 台设备，发布到 {url}（" + (f"{rate:g} 条/秒" if rate else "按各类型的上报周期")
               + (f"，{duration:g} 秒" if duration else "，Ctrl-C 结束") + "）")
    try:
        report = sim.run(duration, rate)
    except KeyboardInterrupt:
        report = sim.report
    finally:
        sim.close()
    click.echo(report.summary())
