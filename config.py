"""Settings from the environment (CONTRACT.md): database, Redis, secret key, host, port, simulator, demo history,
proxy, body limits, sign-in sessions, the sign-in throttle, the MQTT broker and telemetry retention, the 12345 push."""
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


def _whole(env, name: str, default: int, low: int, high: int, unit: str) -> int:
    raw = (env.get(name) or str(default)).strip()
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise SystemExit(f"{name} 应为 {low}–{high} 之间的整数（{unit}），收到 {raw!r}")
    return int(raw)


def _limit(env, name: str, default: str) -> str:
    from limits import parse

    raw = (env.get(name) or default).strip()
    try:
        allowed = parse(raw).amount
    except ValueError:
        allowed = 0
    if allowed < 1:  # "0 per minute" parses, and would refuse every request for good
        raise SystemExit(f"{name} 应为至少 1 次的次数限制，如 {default!r}（limits 库的写法），收到 {raw!r}")
    return raw


def _limits(env, name: str, default: str) -> str:
    """Several limits joined by ";" ("5 per hour;20 per day"), each at least 1."""
    from limits import parse_many

    raw = (env.get(name) or default).strip()
    try:
        parsed = parse_many(raw)
    except ValueError:
        parsed = []
    if not parsed or any(p.amount < 1 for p in parsed):
        raise SystemExit(f"{name} 应为至少 1 次的次数限制，如 {default!r}（limits 库的写法，多条以 ; 分隔），收到 {raw!r}")
    return raw


def _mqtt_url(raw: str | None) -> str | None:
    """UCC_MQTT_URL: mqtt://host[:port] (1883 by default); empty: no MQTT consumer."""
    if raw is None or raw.strip() == "":
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(raw.strip())
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme != "mqtt" or not parts.hostname or (port is not None and not 0 < port < 65536):
        raise SystemExit(f"UCC_MQTT_URL 应为 mqtt://主机[:端口]（如 mqtt://127.0.0.1:1883），收到 {raw!r}")
    return raw.strip()


def _webhook(raw: str | None) -> str | None:
    """UCC_HOTLINE_WEBHOOK: an http(s) URL; empty: no push."""
    if raw is None or raw.strip() == "":
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SystemExit(f"UCC_HOTLINE_WEBHOOK 应为 http(s):// 地址（12345 系统接收推送的地址），收到 {raw!r}")
    return raw.strip()


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
    # Sign-in sessions (auth/, data/login_sessions.py). A person's lasts one duty shift (12 h) from
    # sign-in and ends after 30 idle minutes: the console and unit pages tick every 30 s, so a page left
    # open on a desk of the 24 h hall never goes idle, while a closed page's cookie (or a copy of it)
    # opens nothing half an hour later. A wall display runs unattended for weeks: its session lasts
    # 30 days and survives a day switched off; its page reloads nightly from /wall?token=, which signs
    # it in again when the session has ended, and revoking the token ends it at once.
    session_idle_minutes: int = 30  # UCC_SESSION_IDLE_MINUTES
    session_hours: int = 12  # UCC_SESSION_HOURS
    wall_session_days: int = 30  # UCC_WALL_SESSION_DAYS
    wall_idle_hours: int = 24  # UCC_WALL_IDLE_HOURS
    # failed sign-ins allowed per address and name, and per address across all names (limits' syntax)
    login_limit: str = "10 per minute"  # UCC_LOGIN_LIMIT
    login_address_limit: str = "30 per 10 minutes"  # UCC_LOGIN_ADDRESS_LIMIT
    # The citizens' page (/public, public/throttle.py), limits' syntax, several joined by ";": reports sent per
    # client address (many phones share a carrier's address: generous) and accepted per phone; failed follow-ups
    # (wrong number or phone) per address and per ticket number, so numbers cannot be probed.
    public_report_address_limit: str = "20 per hour"  # UCC_PUBLIC_REPORT_ADDRESS_LIMIT
    public_report_phone_limit: str = "5 per hour;20 per day"  # UCC_PUBLIC_REPORT_PHONE_LIMIT
    public_follow_address_limit: str = "10 per 10 minutes"  # UCC_PUBLIC_FOLLOW_ADDRESS_LIMIT
    public_follow_number_limit: str = "10 per hour"  # UCC_PUBLIC_FOLLOW_NUMBER_LIMIT
    # UCC_BEHIND_PROXY: the client's address is the last X-Forwarded-For hop (nginx, deploy/front.py sets
    # it); the login throttle and the API limit key on it. Off, a client could forge the header.
    behind_proxy: bool = False
    # Request bodies, per route class (web/limits.py): larger ones are refused with 413 before they are read.
    max_body_api: int = 64 * 1024          # UCC_MAX_BODY_API: /api/ (an intake's 2,000-character text is ~12 KB)
    max_body_pages: int | None = None      # UCC_MAX_BODY_PAGES: Dash callbacks; None = fits the largest photo
    max_body: int = 64 * 1024              # UCC_MAX_BODY: every other route (sign-in form, Socket.IO polling)
    max_body_public: int | None = None     # UCC_MAX_BODY_PUBLIC: the citizens' report form; None = its photo fits
    # Telemetry (issue 16): the broker the server subscribes to (mqtt://host:port; unset: no MQTT consumer), and
    # how many days raw readings are kept before they are rolled into hourly rows and deleted.
    mqtt_url: str | None = None  # UCC_MQTT_URL
    mqtt_client_id: str = "ucc-telemetry"  # UCC_MQTT_CLIENT_ID: fixed, so a restart resumes the broker's session
    telemetry_retention_days: int = 30  # UCC_TELEMETRY_RETENTION_DAYS
    # Open311 GeoReport v2 (/open311/v2, docs/open-interfaces.md): the jurisdiction_id this server answers for, and
    # the rate limit per client address (reads are anonymous, so they are limited by address, not by token)
    jurisdiction: str = "changzhou"  # UCC_JURISDICTION
    open311_rate_limit: str = "120 per minute"  # UCC_OPEN311_RATE_LIMIT
    # The 12345 exchange (cases/hotline.py): where every change of a hotline ticket is pushed (unset: nothing is
    # pushed, the hotline pulls), and the exchange's rules file (default data/catalog/hotline.json: retry schedule)
    hotline_webhook: str | None = None  # UCC_HOTLINE_WEBHOOK
    hotline_rules_path: str | None = None  # UCC_HOTLINE_RULES

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
            session_idle_minutes=_whole(env, "UCC_SESSION_IDLE_MINUTES", 30, 1, 24 * 60, "分钟"),
            session_hours=_whole(env, "UCC_SESSION_HOURS", 12, 1, 7 * 24, "小时"),
            wall_session_days=_whole(env, "UCC_WALL_SESSION_DAYS", 30, 1, 366, "天"),
            wall_idle_hours=_whole(env, "UCC_WALL_IDLE_HOURS", 24, 1, 366 * 24, "小时"),
            login_limit=_limit(env, "UCC_LOGIN_LIMIT", "10 per minute"),
            login_address_limit=_limit(env, "UCC_LOGIN_ADDRESS_LIMIT", "30 per 10 minutes"),
            public_report_address_limit=_limits(env, "UCC_PUBLIC_REPORT_ADDRESS_LIMIT", "20 per hour"),
            public_report_phone_limit=_limits(env, "UCC_PUBLIC_REPORT_PHONE_LIMIT", "5 per hour;20 per day"),
            public_follow_address_limit=_limits(env, "UCC_PUBLIC_FOLLOW_ADDRESS_LIMIT", "10 per 10 minutes"),
            public_follow_number_limit=_limits(env, "UCC_PUBLIC_FOLLOW_NUMBER_LIMIT", "10 per hour"),
            database_url=env.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'ucc.db'}",
            redis_url=env.get("REDIS_URL") or None,
            secret_key=_secret_key(),
            host=env.get("UCC_HOST", "127.0.0.1"),
            port=port,
            simulate=_flag(env.get("UCC_SIMULATE"), True),
            api_rate_limit=_limit(env, "UCC_API_RATE_LIMIT", "6000 per minute"),
            seed_history_days=int(history_raw),
            behind_proxy=_flag(proxy_raw, False),
            max_body_api=_size("UCC_MAX_BODY_API", 64 * 1024),
            max_body_pages=_size("UCC_MAX_BODY_PAGES", None),
            max_body=_size("UCC_MAX_BODY", 64 * 1024),
            max_body_public=_size("UCC_MAX_BODY_PUBLIC", None),
            mqtt_url=_mqtt_url(env.get("UCC_MQTT_URL")),
            mqtt_client_id=(env.get("UCC_MQTT_CLIENT_ID") or "ucc-telemetry").strip(),
            telemetry_retention_days=_whole(env, "UCC_TELEMETRY_RETENTION_DAYS", 30, 1, 3660, "天"),
            jurisdiction=(env.get("UCC_JURISDICTION") or "changzhou").strip(),
            open311_rate_limit=_limit(env, "UCC_OPEN311_RATE_LIMIT", "120 per minute"),
            hotline_webhook=_webhook(env.get("UCC_HOTLINE_WEBHOOK")),
            hotline_rules_path=(env.get("UCC_HOTLINE_RULES") or "").strip() or None,
        )
        values.update(overrides)
        return cls(**values)
