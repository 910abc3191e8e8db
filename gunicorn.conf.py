"""gunicorn settings for the production mode: `gunicorn -c gunicorn.conf.py wsgi:application`.

Several worker processes behind one port, each with a pool of threads (the app is thread-safe; one
thread per open WebSocket, so size UCC_THREADS to the screens a process serves plus the API load).
Keep-alive is on, so API clients reuse their connections. With more than one worker, Socket.IO's
long-polling would need sticky sessions: the pages connect over WebSocket only, and REDIS_URL must
be set so every worker sees every case event (docs/live.md). UCC_SIMULATE must be on in one process
at most: leave it off here and run `flask --app app simulate` beside it for a demo.
"""
import os

bind = f"{os.environ.get('UCC_HOST', '127.0.0.1')}:{os.environ.get('UCC_PORT', '8050')}"
workers = int(os.environ.get("UCC_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("UCC_THREADS", "100"))
keepalive = 30
timeout = 120  # a WebSocket is one long request; gthread workers keep heart-beating meanwhile
graceful_timeout = 20
accesslog = None  # the access log line costs ~50 µs a request; turn on with --access-logfile -
