"""gunicorn settings for the production mode: `gunicorn -c gunicorn.conf.py wsgi:application`.

Several worker processes behind one port, each an event loop (gevent, UCC_CONNECTIONS connections;
UCC_WORKER_CLASS=gthread for a pool of UCC_THREADS threads, one per open WebSocket, instead).
Keep-alive is on, so API clients reuse their connections. With more than one worker, Socket.IO's
long-polling would need sticky sessions: the pages connect over WebSocket only, and REDIS_URL must
be set so every worker sees every case event (docs/live.md). UCC_SIMULATE must be on in one process
at most: leave it off here and run `flask --app app simulate` beside it for a demo.
In production, run it behind nginx: `make serve` (deploy/front.py binds it to a private unix socket;
docs/production.md): gunicorn alone has no header or body timeout and no per-client limit.
"""
import os

bind = f"{os.environ.get('UCC_HOST', '127.0.0.1')}:{os.environ.get('UCC_PORT', '8050')}"
workers = int(os.environ.get("UCC_WORKERS", "2"))


def _default_worker_class() -> str:
    from importlib.util import find_spec

    return "gevent" if find_spec("gevent") is not None else "gthread"  # requirements-prod.txt


# gevent: each process serves its connections (API calls, WebSockets) from one event loop; no thread
# hand-off per request, ~35 % less CPU per intake than gthread (bench/bench_intake.py). A SQLite call
# holds the loop while it runs (as it holds the GIL under gthread for its Python part): the longest is
# the month figures' full read in the background job, ~0.2 s every 5 min at a million cases.
worker_class = os.environ.get("UCC_WORKER_CLASS") or _default_worker_class()
worker_connections = int(os.environ.get("UCC_CONNECTIONS", "1000"))  # gevent: open connections per process
threads = int(os.environ.get("UCC_THREADS", "100"))  # gthread: threads per process
keepalive = 30
timeout = 120  # a WebSocket is one long request; gthread workers keep heart-beating meanwhile
graceful_timeout = 20
accesslog = None  # the access log line costs ~50 µs a request; turn on with --access-logfile -
