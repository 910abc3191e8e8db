"""The MQTT edge of the sensing fleet: the telemetry consumer (paho-mqtt) that feeds sensing.telemetry."""
