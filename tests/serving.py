"""Run the real app (`python app.py`) in a subprocess on a free port, for end-to-end tests."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppProcess:
    def __init__(self, database_url: str, log_path: Path, server: str = "embedded", **env):
        """`server`: "embedded" runs `python app.py`; "gunicorn" the production mode
        (`gunicorn -c gunicorn.conf.py wsgi:application`, UCC_WORKERS processes)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        full_env = dict(os.environ, DATABASE_URL=database_url, UCC_HOST="127.0.0.1",
                        UCC_PORT=str(self.port), UCC_SECRET_KEY="test-secret", UCC_SIMULATE="0", **env)
        full_env.pop("REDIS_URL", None)
        self.log_path = log_path
        self._log = open(log_path, "w")
        command = [sys.executable, str(ROOT / "app.py")]
        if server == "gunicorn":
            command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:application"]
        self.proc = subprocess.Popen(command, cwd=ROOT, env=full_env,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120.0) -> "AppProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        log = self.log_path.read_text()
        self.stop()  # a server that never came up must not outlive the test
        raise TimeoutError(f"app not ready after {timeout}s:\n{log}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()
