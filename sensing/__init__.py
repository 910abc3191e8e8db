"""Sensing (智能感知): the device registry, its import, and (later) telemetry and alarm rules over data/."""
