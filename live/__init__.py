"""Live updates: domain events (the case-event outbox) → Socket.IO rooms on namespace /live, shared
between processes through Redis when REDIS_URL is set. See docs/live.md and CONTRACT.md."""
from __future__ import annotations

from live.bus import NAMESPACE, LiveBus

__all__ = ["NAMESPACE", "LiveBus", "init_live", "run_server"]


def init_live(server, services) -> LiveBus:
    """Attach Socket.IO to the Flask server (the one Dash runs on) and subscribe to the case outbox."""
    return LiveBus(server, services, redis_url=services.settings.redis_url)


def run_server(server, host: str, port: int) -> None:
    """Serve HTTP, Dash and Socket.IO from one process (the embedded default)."""
    server.extensions["ucc_live"].run(server, host=host, port=port)
