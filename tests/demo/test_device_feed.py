"""The demo fleet's telemetry feed: valid readings, inside each type's allowed silence, no false alarm, and
faults that raise their rules and clear after them (run through the alarm engine, dispatch.alarms)."""
import copy
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from data import files
from demo.device_feed import DeviceFeed
from dispatch.alarms import step_rules

UTC = timezone.utc
START = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # 18:00 in Changzhou: the night's faults begin within hours


@pytest.fixture(scope="module")
def types():
    return files.device_types()


def _fleet(types, per_type=12, seen=START):
    return [(f"{code}-{i}", code, seen, None) for code in types for i in range(per_type)]


def _run(feed, hours: float):
    """Every reading of `hours` of rounds, per device: [(time, type, values)]."""
    out = defaultdict(list)
    t = START
    while t < START + timedelta(hours=hours):
        for device_id, type_code, payload in feed.round(t):
            at = datetime.fromtimestamp(payload["ts"] / 1000, UTC)
            out[device_id].append((at, type_code, payload["values"]))
        t += timedelta(seconds=feed.round_s)
    return out


def _alarms(types, series):
    """The engine's events over each device's readings: {(device, rule): [kinds]}."""
    events = defaultdict(list)
    for device_id, readings in series.items():
        dtype = types[readings[0][1]]
        _states, evs = step_rules(dtype, {}, [(at, values) for at, _t, values in readings])
        for e in evs:
            events[(device_id, e.rule)].append(e.kind)
    return events


def test_a_quiet_fleet_reports_valid_values_inside_its_allowed_silence_and_raises_nothing(types):
    settings = copy.deepcopy(files.demo_device_feed())
    for f in settings["faults"]:
        f["per_device_day"] = 0
    settings["silence"]["per_device_day"] = 0
    feed = DeviceFeed(_fleet(types), settings, START)
    series = _run(feed, 4)
    assert set(series) == {d.id for d in feed.devices}  # every device spoke
    for device_id, readings in series.items():
        dtype = types[readings[0][1]]
        times = [START] + [at for at, _t, _v in readings]
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
        assert max(gaps) < dtype.offline_after_s, device_id  # never offline
        for _at, _t, values in readings:
            for key, value in values.items():
                spec = dtype.key(key)
                assert spec is not None and spec.valid(value), (device_id, key, value)
    assert not _alarms(types, series)  # healthy readings hold no rule


def test_faults_raise_their_rules_and_clear_after_them(types):
    settings = copy.deepcopy(files.demo_device_feed())
    for f in settings["faults"]:
        f["per_device_day"] = 40  # about one fault a device in the hours run
        f["minutes"] = [5, 10]
    settings["silence"]["per_device_day"] = 0
    feed = DeviceFeed(_fleet(types, per_type=6), settings, START, seed=7)
    events = _alarms(types, _run(feed, 3))
    raised = {rule for (_d, rule), kinds in events.items() if "raise" in kinds}
    # every dispatching kind of fault the file names shows up as its rule
    for rule in ("cover_tilt", "water_ponding", "gas_level1", "light_fault", "ai_street_vendor", "ai_garbage",
                 "ai_illegal_parking", "cover_battery_low"):
        assert rule in raised, rule
    # a fault ends and its alarm clears (the recovery rounds meet the clear condition), except where the run
    # ended inside a fault
    cleared = sum(1 for kinds in events.values() if "clear" in kinds)
    assert cleared >= 0.8 * sum(1 for kinds in events.values() if "raise" in kinds)


def test_a_silent_device_stops_and_comes_back(types):
    settings = copy.deepcopy(files.demo_device_feed())
    for f in settings["faults"]:
        f["per_device_day"] = 0
    settings["silence"] = {"per_device_day": 48, "minutes": [200, 200]}
    feed = DeviceFeed(_fleet(types, per_type=3), settings, START, seed=3)
    series = _run(feed, 8)
    long_gaps = 0
    for readings in series.values():
        times = [at for at, _t, _v in readings]
        long_gaps += any((b - a) >= timedelta(minutes=200) for a, b in zip(times, times[1:]))
    assert long_gaps >= len(series) // 2


def test_the_same_seed_gives_the_same_readings(types):
    settings = files.demo_device_feed()
    a = _run(DeviceFeed(_fleet(types, 4), settings, START, seed=11), 1)
    b = _run(DeviceFeed(_fleet(types, 4), settings, START, seed=11), 1)
    assert a == b
