"""Helper of bench_intake.py: the app as `python app.py` builds it (create_app, request log at INFO),
served by Werkzeug one request at a time under cProfile, so that the request path of the real server
(accept, HTTP parsing, logging, Flask, the API, intake) can be attributed.

    python bench/_profiled_server.py DATABASE_URL OUT.prof WARM N

Prints the port once listening, serves WARM requests unprofiled, then N under cProfile, writes the
profile and exits. Werkzeug's server answers every request with `Connection: close`, so one request is
one connection. The live bus listener is detached: its emitter thread would take the GIL inside
whichever C call of the request releases it (bench_intake.py measures the emitter on its own). Unlike
the threaded server, no thread is started per connection.
"""
from __future__ import annotations

import cProfile
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    url, out, warm, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from werkzeug.serving import WSGIRequestHandler, make_server

    from app import create_app
    from config import Settings

    app = create_app(Settings.from_env(database_url=url))
    app.extensions["ucc"].cases.listeners.clear()

    class Http11(WSGIRequestHandler):
        protocol_version = "HTTP/1.1"  # what the threaded server speaks

    server = make_server("127.0.0.1", 0, app, threaded=False, request_handler=Http11)
    print(server.server_port, flush=True)
    for _ in range(warm):
        server.handle_request()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        server.handle_request()
    prof.disable()
    prof.dump_stats(out)
    server.server_close()


if __name__ == "__main__":
    main()
