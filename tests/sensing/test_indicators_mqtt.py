"""Vital-sign readings through the machine's real Mosquitto (SQLite and PostgreSQL): the consumer takes the POST's payload
on the indicators topic at QoS 1, stores it once (duplicates skipped), counts and logs malformed, unknown-code and
out-of-range messages without stopping, and acknowledges after the commit, beside the telemetry it already carries."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import orjson
import pytest

from data import files
from data.indicator_readings import read_series, reading_count
from sensing.indicators import IndicatorIngest
from sensing.telemetry import TelemetryIngest
from sensing_mqtt.consumer import TelemetryConsumer
from tests.sensing.mqtt_broker import require_shared_broker
from tests.sensing.test_mqtt import Publisher, wait_for

pytestmark = pytest.mark.mqtt


def test_indicator_messages_on_the_machines_broker(empty_db):
    url = require_shared_broker()
    tag = uuid.uuid4().hex[:8]
    topic = f"ucc-test-{tag}/indicators"  # not the shared ucc/indicators: other runs on this machine publish there
    readings = IndicatorIngest(empty_db, files.city_indicators)
    consumer = TelemetryConsumer(TelemetryIngest(empty_db, files.device_types), url, client_id=f"test-ind-{tag}",
                                 topic=f"ucc-test-{tag}/devices/+/telemetry", session_expiry=60,
                                 indicators=readings, indicators_topic=topic).start()
    try:
        assert consumer.wait_connected()
        time.sleep(0.3)  # the subscription is in place
        pub = Publisher(url)
        now_ms = int(time.time() * 1000)

        def send(payload):
            data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
            pub.client.publish(topic, data, qos=1).wait_for_publish(5)

        one = {"code": "aqi", "ts": now_ms - 3_600_000, "value": 48, "unit": "", "source": "环境监测站"}
        send(one)
        send(b"{this is not json")                                                     # malformed
        send({"code": "no_such", "ts": now_ms, "value": 1, "source": "x"})           # unknown code
        send([{"code": "aqi", "ts": now_ms, "value": 52, "source": "环境监测站"},
              {"code": "aqi", "ts": now_ms + 1, "value": 9999, "source": "环境监测站"}])  # out of range: refused whole
        send([{"code": "aqi", "ts": datetime.fromtimestamp(now_ms / 1000, timezone.utc).isoformat(), "value": 53,
               "unit": "", "source": "环境监测站"},
              {"code": "power_load", "ts": now_ms, "value": 912, "unit": "万千瓦", "source": "电网调度"}])
        send(one)                                                                      # a duplicate
        assert wait_for(lambda: readings.stats()["messages"] >= 6), readings.stats()
        with empty_db.session() as s:
            assert [r[1] for r in read_series(s, "aqi")] == [48, 53]
            assert reading_count(s) == 3
        stats = readings.stats()
        assert (stats["malformed"], stats["unknown_code"], stats["out_of_range"]) == (1, 1, 1)
        assert (stats["stored"], stats["duplicates"]) == (3, 1)
        # every message acknowledged once stored (the refused ones too: resending them would not mend them)
        assert wait_for(lambda: consumer.state()["acked"] >= 6), consumer.state()
        assert consumer.connected and consumer.counts["write_failures"] == 0
        pub.close()
    finally:
        consumer.stop()
