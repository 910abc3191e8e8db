"""A fresh start: `python app.py` on an empty database creates the schema, seeds the demo city
and serves; the CLI then works on the same database, with DATABASE_URL from the environment."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

from tests.serving import ROOT, AppProcess


def _flask(db_url: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DATABASE_URL=db_url, UCC_SECRET_KEY="test-secret")
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_python_app_py_seeds_an_empty_database_and_serves(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    # UCC_SEED_HISTORY: the demo history before serving (90 days by default; one here, to stay quick)
    app = AppProcess(db_url, tmp_path / "app.log", UCC_SEED_HISTORY="1").wait_ready(timeout=180)
    try:
        html = urllib.request.urlopen(app.url + "/", timeout=10).read().decode()
        assert "城市运行管理平台" in html
        token = _flask(db_url, "create-token", "--role", "wall").stdout.strip()
        req = urllib.request.Request(app.url + "/api/v1/areas?level=5&per_page=1",
                                     headers={"Authorization": f"Bearer {token}"})
        assert json.load(urllib.request.urlopen(req, timeout=10))["total"] == 5891
        req = urllib.request.Request(app.url + "/api/v1/events?per_page=1&count=true",
                                     headers={"Authorization": f"Bearer {token}"})
        assert json.load(urllib.request.urlopen(req, timeout=10))["total"] > 800  # a day of Changzhou's reports
    finally:
        app.stop()
    assert "已补录" in (tmp_path / "app.log").read_text()
    # Seeding again changes nothing (idempotent), and so does init-db.
    again = _flask(db_url, "seed-demo")
    assert again.returncode == 0 and "已存在" in again.stdout
    assert _flask(db_url, "init-db").returncode == 0
