"""The production front: gunicorn (gevent workers) on a private unix socket behind nginx on UCC_PORT.

    python deploy/front.py          (`make serve`; Ctrl-C stops both)

Renders deploy/nginx.conf.template into var/front/nginx.conf (addresses and paths only: every limit
is in the template), starts `gunicorn -c gunicorn.conf.py wsgi:application` bound to
var/front/gunicorn.sock with UCC_BEHIND_PROXY=1 (the app takes the client's address from nginx's
X-Forwarded-For), waits until it answers, then runs Debian's nginx as a non-daemon child with its
own prefix, pid and temp dirs under var/front/ — no root, no /etc/nginx. When either process ends,
or on Ctrl-C / SIGTERM, both are stopped. See docs/production.md.
"""
from __future__ import annotations

import argparse
import getpass
import grp
import http.client
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx.conf.template"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def render(prefix: Path, listen: str, upstream: str, template: Path = TEMPLATE) -> str:
    """The nginx configuration: the template with its {{placeholders}} filled; an unknown one is an error."""
    values = {"prefix": str(prefix), "listen": listen, "upstream": upstream, "user": _user_line(),
              "nofile": str(open_files_target())}

    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise SystemExit(f"{template}: 未知占位符 {{{{{name}}}}}")
        return values[name]

    return re.sub(r"\{\{(\w+)\}\}", fill, template.read_text())


def _user_line() -> str:
    # Started as root, nginx would run its workers as `nobody`, who cannot reach gunicorn's socket in
    # a 0700 directory: keep the workers under the same account as the app (in a real deployment,
    # run `make serve` as the service's own unprivileged user; then this line is not written).
    if os.geteuid() != 0:
        return ""
    return f"user {getpass.getuser()} {grp.getgrgid(os.getegid()).gr_name};"


def open_files_target(want: int = 40000) -> int:
    """Descriptors the front asks for: `want`, or the hard limit when that is lower (only root may raise it)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return want if hard == resource.RLIM_INFINITY else min(want, hard)


def raise_open_files() -> None:
    """Thousands of connections need as many descriptors; children (nginx, gunicorn) inherit this."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < open_files_target():
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_files_target(), hard))


def _unix_get(path: Path, url: str, timeout: float = 2.0) -> int:
    conn = http.client.HTTPConnection("localhost", timeout=timeout)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(str(path))
    conn.sock = sock
    try:
        conn.request("GET", url)
        return conn.getresponse().status
    finally:
        conn.close()


class Front:
    """gunicorn + nginx as two child processes; `start()`, `wait()`, `stop()`."""

    def __init__(self, host: str, port: int, var_dir: Path, env: dict | None = None,
                 extra_binds: tuple[str, ...] = (), log=None):
        self.host, self.port = host, port
        self.prefix = Path(var_dir)
        self.socket_path = self.prefix / "gunicorn.sock"
        self.env = dict(os.environ if env is None else env)
        self.env["UCC_BEHIND_PROXY"] = "1"
        self.env.setdefault("UCC_SIMULATE", "0")  # never in every worker: `flask --app app simulate` beside it
        self.extra_binds = extra_binds
        self.log = log  # a file for both processes' output; None: inherit (the terminal)
        self.gunicorn: subprocess.Popen | None = None
        self.nginx: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def write_config(self) -> Path:
        for sub in ("", "tmp", "tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        self.prefix.chmod(0o700)  # only this account (and nginx's workers, running as it) reach the socket
        conf = self.prefix / "nginx.conf"
        conf.write_text(render(self.prefix, f"{self.host}:{self.port}", f"unix:{self.socket_path}"))
        return conf

    def start(self, timeout: float = 120.0) -> "Front":
        if not os.path.exists(NGINX):
            raise SystemExit(f"找不到 nginx（{NGINX}）：以 root 运行 scripts/ensure_system_deps.sh，或 apt-get install nginx")
        raise_open_files()
        conf = self.write_config()
        check = subprocess.run([NGINX, "-t", "-q", "-p", str(self.prefix), "-e", str(self.prefix / "error.log"),
                                "-c", str(conf)], capture_output=True, text=True)
        if check.returncode != 0:
            raise SystemExit(f"nginx 配置无效：\n{check.stderr}")
        if self.socket_path.exists():
            self.socket_path.unlink()
        command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
                   "--bind", f"unix:{self.socket_path}", "--control-socket", str(self.prefix / "gunicorn.ctl")]
        for bind in self.extra_binds:
            command += ["--bind", bind]
        # Sessions of their own: a terminal's Ctrl-C reaches this script only, which stops both children
        # with SIGTERM (gunicorn's gevent workers print a SystemExit traceback when hit by SIGINT).
        self.gunicorn = subprocess.Popen(command + ["wsgi:application"], cwd=ROOT, env=self.env, start_new_session=True,
                                         stdout=self.log, stderr=subprocess.STDOUT if self.log else None)
        self._wait_gunicorn(timeout)
        self.nginx = subprocess.Popen([NGINX, "-p", str(self.prefix), "-e", str(self.prefix / "error.log"),
                                       "-c", str(conf)], cwd=self.prefix, env=self.env, start_new_session=True,
                                      stdout=self.log, stderr=subprocess.STDOUT if self.log else None)
        self._wait_nginx(timeout=10)
        return self

    def _wait_gunicorn(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.gunicorn.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.gunicorn.returncode}")
            try:
                if _unix_get(self.socket_path, "/healthz") == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"gunicorn not ready after {timeout:.0f} s")

    def _wait_nginx(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.nginx.poll() is not None:
                self.stop()
                raise RuntimeError(f"nginx exited with {self.nginx.returncode}: "
                                   f"{(self.prefix / 'error.log').read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError("nginx not answering")

    def wait(self) -> int:
        """Until either child ends (then the other is stopped too); returns the first one's status."""
        while True:
            for proc in (self.gunicorn, self.nginx):
                if proc is not None and proc.poll() is not None:
                    code = proc.returncode
                    self.stop()
                    return code
            time.sleep(0.5)

    def stop(self) -> None:
        # nginx first (no new requests reach a stopping gunicorn); SIGQUIT would wait for WebSockets.
        for proc, sig in ((self.nginx, signal.SIGTERM), (self.gunicorn, signal.SIGTERM)):
            if proc is not None and proc.poll() is None:
                proc.send_signal(sig)
                try:
                    proc.wait(25)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def _stop_with_parent() -> None:
    """SIGTERM this process when its parent dies: `make serve` stopped by a process manager's SIGTERM
    does not pass it on, and nginx and gunicorn would be left serving (Linux prctl; elsewhere a no-op)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("UCC_HOST", "127.0.0.1"), help="nginx listens here (UCC_HOST)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("UCC_PORT", "8050")), help="(UCC_PORT)")
    parser.add_argument("--var-dir", default=str(ROOT / "var" / "front"), help="nginx prefix, pid, logs, gunicorn socket")
    parser.add_argument("--print-config", action="store_true", help="print the rendered nginx.conf and exit")
    args = parser.parse_args(argv)
    front = Front(args.host, args.port, Path(args.var_dir))
    if args.print_config:
        print(render(front.prefix, f"{args.host}:{args.port}", f"unix:{front.socket_path}"))
        return 0
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        if not stopping:
            stopping = True
            print("正在停止 nginx 与 gunicorn …", file=sys.stderr, flush=True)
            front.stop()
        sys.exit(0)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    _stop_with_parent()
    front.start()
    print(f"城市运行管理平台（生产前端）{front.url}/  — nginx → gunicorn unix:{front.socket_path}；Ctrl-C 停止",
          file=sys.stderr, flush=True)
    return front.wait()


if __name__ == "__main__":
    sys.exit(main())
