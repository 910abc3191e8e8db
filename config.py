"""Settings from the environment (CONTRACT.md): database, Redis, secret key, host, port, simulator, demo history, proxy, body limits."""
from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VAR_DIR = ROOT / "var"


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


_SIZE = re.compile(r"^\s*(\d+)\s*(|b|k|kb|kib|m|mb|mib)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024 ** 2, "mb": 1024 ** 2, "mib": 1024 ** 2}


def _size(name: str, default: int | None) -> int | None:
    """A byte count from the environment: 65536, 64k, 64KiB, 12m, 12MB (binary units)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    m = _SIZE.match(raw)
    if not m or int(m.group(1)) < 1:
        raise SystemExit(f"{name} 应为正的字节数（如 65536、64k、12m），收到 {raw!r}")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def _secret_key() -> str:
    # A restart must not sign everyone out: keep a generated key in var/ when none is configured.
    if os.environ.get("UCC_SECRET_KEY"):
        return os.environ["UCC_SECRET_KEY"]
    path = VAR_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


@dataclass
class Settings:
    database_url: str
    redis_url: str | None
    secret_key: str
    host: str
    port: int
    simulate: bool
    api_rate_limit: str = "6000 per minute"
    seed_history_days: int = 90  # UCC_SEED_HISTORY: days of demo history `python app.py` fills (0: none)
    # UCC_BEHIND_PROXY: the client's address is the last X-Forwarded-For hop (nginx, deploy/front.py sets
    # it); the login throttle and the API limit key on it. Off, a client could forge the header.
    behind_proxy: bool = False
    # Request bodies, per route class (web/limits.py): larger ones are refused with 413 before they are read.
    max_body_api: int = 64 * 1024          # UCC_MAX_BODY_API: /api/ (an intake's 2,000-character text is ~12 KB)
    max_body_pages: int | None = None      # UCC_MAX_BODY_PAGES: Dash callbacks; None = fits the largest photo
    max_body: int = 64 * 1024              # UCC_MAX_BODY: every other route (sign-in form, Socket.IO polling)

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        env = os.environ
        port_raw = env.get("UCC_PORT", "8050")
        try:
            port = int(port_raw)
        except ValueError:
            raise SystemExit(f"UCC_PORT 应为端口号，收到 {port_raw!r}")
        history_raw = (env.get("UCC_SEED_HISTORY") or "90").strip()
        if not (history_raw.isascii() and history_raw.isdigit()) or int(history_raw) > 3660:
            raise SystemExit(f"UCC_SEED_HISTORY 应为 0–3660 之间的天数（0 表示不补录演示历史），收到 {history_raw!r}")
        proxy_raw = (env.get("UCC_BEHIND_PROXY") or "").strip().lower()
        if proxy_raw not in ("", "0", "1", "true", "false", "yes", "no", "on", "off"):
            raise SystemExit(f"UCC_BEHIND_PROXY 应为 1 或 0（是否在 nginx 等反向代理之后），收到 {proxy_raw!r}")
        values = dict(
            database_url=env.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'ucc.db'}",
            redis_url=env.get("REDIS_URL") or None,
            secret_key=_secret_key(),
            host=env.get("UCC_HOST", "127.0.0.1"),
            port=port,
            simulate=_flag(env.get("UCC_SIMULATE"), True),
            api_rate_limit=env.get("UCC_API_RATE_LIMIT") or "6000 per minute",
            seed_history_days=int(history_raw),
            behind_proxy=_flag(proxy_raw, False),
            max_body_api=_size("UCC_MAX_BODY_API", 64 * 1024),
            max_body_pages=_size("UCC_MAX_BODY_PAGES", None),
            max_body=_size("UCC_MAX_BODY", 64 * 1024),
        )
        values.update(overrides)
        return cls(**values)
