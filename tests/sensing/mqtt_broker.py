"""MQTT brokers for the tests: the machine's Mosquitto at 127.0.0.1:1883, and a private one to stop and restart at will."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import IN_CI

SHARED_URL = "mqtt://127.0.0.1:1883"


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def require_shared_broker() -> str:
    """Fail in CI, skip elsewhere, when the machine's Mosquitto does not answer at 127.0.0.1:1883."""
    if _listening(1883):
        return SHARED_URL
    message = "Mosquitto at 127.0.0.1:1883 not reachable"
    if IN_CI:
        pytest.fail(message + " — mandatory with CI=true")
    pytest.skip(message)


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if found:
        return found
    message = "mosquitto missing (Debian's mosquitto package)"
    if IN_CI:
        pytest.fail(message + " — mandatory with CI=true")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnMosquitto:
    """A private mosquitto on a free port with its own persistence directory (never the machine's broker):
    stopping it with SIGTERM saves its sessions and queued messages, as a real restart does."""

    def __init__(self, directory: Path):
        self.binary = mosquitto_binary()
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.conf = self.dir / "mosquitto.conf"
        # no cap on a session's queue: what the broker acknowledged to a publisher it keeps for the consumer;
        # `user root`: as root, mosquitto would otherwise drop to its own user, who cannot write in a pytest tmp dir
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\nuser root\n"
                             f"persistence_location {self.dir}/\nmax_queued_messages 0\n"
                             f"log_dest file {self.dir}/mosquitto.log\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "OwnMosquitto":
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start: {(self.dir / 'mosquitto.log').read_text()[-2000:]}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: mosquitto writes its persistence file, then exits
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
