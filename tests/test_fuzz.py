"""A seeded fuzz run on SQLite and PostgreSQL: thousands of hostile requests across the API, the pages,
photos, static paths and every Dash callback (as its page's roles and as others), in-process.
None may answer 500 or more, and a refused request (4xx, or a callback that did nothing) changes no
row and no photo file."""
from __future__ import annotations

import random
import shutil
import time
from urllib.parse import quote

import pytest

from data.tokens import create_token
from tests.conftest import PgSchema, make_settings, require_postgres
from tests.fuzzing import (BIG, DASH_CALLBACK, HOSTILE, HOSTILE_TEXT, USER_OF_ROLE, callback_body, counts, csrf_header,
                           dash_app_of, files_under, send_json, server_callbacks, sign_in)

SEED = 20261207
REQUESTS = 2_100  # per database
POINT = (119.9745, 31.7847)
ROLES = tuple(USER_OF_ROLE)
API_GETS = ("/api/v1/events", "/api/v1/kpis", "/api/v1/areas", "/api/v1/areas/locate", "/api/v1/categories",
            "/api/v1/units", "/api/v1/indicators", "/api/v1/plans", "/api/v1/emergencies", "/api/v1/resources")
PARAMS = ("state", "kind", "area", "overdue", "page", "per_page", "after", "count", "start", "end", "by", "level",
          "parent", "lon", "lat", "theme", "updated_since", "external_ref", "code", "near", "type", "specialty",
          "radius_m", "limit", "status")
RESOURCE_FIELDS = ("resource", "item", "quantity")
PAGES = ("/", "/wall", "/cockpit", "/console", "/unit", "/report")
PAGE_PARAMS = ("area", "theme", "case", "token", "panel", "kiosk", "rotate", "mode", "next")
WEIRD_PATHS = ("/_dash-component-suites/..%2f..%2fconfig.py", "/_dash-component-suites/dash/..%2F..%2Fapp.py",
               "/_dash-component-suites/%00/x.js", "/_dash-component-suites/dash/deps/nope.js",
               "/photos/0", "/photos/-1", f"/photos/{BIG}", "/photos/abc", "/photos/%00", "/nope", "/wall/%2e%2e/",
               "/api/v2/events", "/api/v1/events/abc", "/api/v1/%00", "/assets/..%2fconfig.py", "/_dash-layout",
               "/_dash-dependencies", "/login?next=%00", "/healthz", "/wall/base.json?v=%00", "/" + "a" * 3000)
INTAKE = {"category": "010151", "lon": POINT[0], "lat": POINT[1], "description": "井盖缺失", "source": "hotline"}
ACTION_FIELDS = ("action", "version", "note", "hours", "unit", "level", "plan", "item", "kind", "text", "fields")
# an emergency's response (emergency/response.py) is fuzzed on an accepted gas leak
EMERGENCY = {**INTAKE, "category": "040102", "severity": 4, "description": "燃气泄漏"}


def _seed_demo_db(url: str, demo_records) -> None:
    from data.db import Database
    from data.schema import init_db
    from demo.seed import seed_demo

    db = Database(url)
    init_db(db)
    seed_demo(db, progress=lambda _m: None, records=demo_records)
    db.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fuzz_app(request, demo_sqlite_url, demo_records, tmp_path, monkeypatch):
    from app import create_app

    schema = None
    if request.param == "sqlite":
        dst = tmp_path / "app.db"
        shutil.copy(demo_sqlite_url.removeprefix("sqlite:///"), dst)
        url = f"sqlite:///{dst}"
    else:
        require_postgres()
        schema = PgSchema()
        url = schema.url
        _seed_demo_db(url, demo_records)
    photos = tmp_path / "photos"
    monkeypatch.setenv("UCC_PHOTO_DIR", str(photos))
    app = create_app(make_settings(url))
    app.config["TESTING"] = True
    yield app, photos
    app.extensions["ucc"].db.dispose()
    if schema is not None:
        schema.drop()


class Fuzzer:
    def __init__(self, app, photos, rng: random.Random):
        self.app, self.photos, self.rng = app, photos, rng
        self.db = app.extensions["ucc"].db
        self.callbacks = server_callbacks(dash_app_of(app))
        with self.db.session() as s:
            self.tokens = {role: create_token(s, role, "320400" if role != "unit_handler" else "320402",
                                              None if role != "unit_handler" else self._a_unit(s))
                           for role in ("duty_officer", "leader", "admin", "wall", "grid_member", "unit_handler")}
        self.api = app.test_client()
        self.clients = {None: app.test_client()}
        for role, user in USER_OF_ROLE.items():
            client = app.test_client()
            sign_in(client, user)
            self.clients[role] = client
        officer = {"Authorization": f"Bearer {self.tokens['duty_officer']}"}
        self.case = send_json(self.api, "POST", "/api/v1/events", INTAKE, officer).get_json()
        leak = send_json(self.api, "POST", "/api/v1/events", EMERGENCY, officer).get_json()
        self.emergency = send_json(self.api, "POST", f"/api/v1/events/{leak['id']}/actions",
                                   {"action": "accept", "version": leak["version"]}, officer).get_json()
        self.sent = 0
        self.failures: list[str] = []
        self.kinds: dict[str, int] = {}

    @staticmethod
    def _a_unit(s) -> str:
        from sqlalchemy import select

        from data.models import Unit

        return s.scalar(select(Unit.code).where(Unit.area_code == "320402").order_by(Unit.code))

    # -- values ----------------------------------------------------------------------------------------------
    def value(self):
        r = self.rng.random()
        if r < 0.75:
            return self.rng.choice(HOSTILE)
        if r < 0.85:
            return self.case["id"]
        return {"id": self.rng.choice([self.case["id"], "abc", BIG, -1]),
                **({"version": self.rng.choice(HOSTILE)} if self.rng.random() < 0.5 else {})}

    def text(self) -> str:
        return quote(self.rng.choice(HOSTILE_TEXT + ["320400", "320402", "accepted", "2026-11-01", "true", "1"]),
                     safe="", errors="surrogatepass")

    def query(self, names) -> str:
        picked = self.rng.sample(names, k=self.rng.randint(1, min(4, len(names))))
        return "&".join(f"{n}={self.text()}" for n in picked)

    # -- one request -------------------------------------------------------------------------------------------
    def send(self, kind: str, client, method: str, path: str, body=None, headers=None, refused_if_2xx=False):
        before, files = counts(self.db), files_under(self.photos)
        if body is None:
            resp = client.open(path, method=method, headers=headers or {})
        else:
            resp = send_json(client, method, path, body, headers)
        self.sent += 1
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        status = resp.status_code
        where = f"{method} {path[:120]} body={str(body)[:160]!r}"
        if status >= 500:
            self.failures.append(f"{status} {where}: {resp.get_data(as_text=True)[:200]}")
        elif (400 <= status < 500 or status == 204 or refused_if_2xx) and \
                (counts(self.db), files_under(self.photos)) != (before, files):
            self.failures.append(f"refused {status} yet changed rows or files: {where}")
        if status in (400, 401, 403, 404, 409, 413, 422, 429) and path.startswith("/api/"):
            body_json = resp.get_json(silent=True) or {}
            if not ({"error", "message"} <= set(body_json)):
                self.failures.append(f"{status} without the contract's JSON error: {where}")
        return resp

    def api_request(self):
        role = self.rng.choice(list(self.tokens) + [None])
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        r = self.rng.random()
        if r < 0.3:
            path = self.rng.choice(API_GETS)
            return self.send("api-get", self.api, "GET", f"{path}?{self.query(PARAMS)}", headers=headers)
        if r < 0.5:
            body = dict(INTAKE)
            for field in self.rng.sample(list(INTAKE) + ["severity", "reporter_phone", "occurred_at",
                                                          "idempotency_key"], k=self.rng.randint(1, 3)):
                body[field] = self.value()
            if self.rng.random() < 0.1:
                body = self.value()
            return self.send("api-intake", self.api, "POST", "/api/v1/events", body, headers)
        if r < 0.75:
            case = self.rng.choice([self.case, self.emergency])
            target = self.rng.choice([case["id"], case["id"], BIG, 10**25, 2**63 - 1, 0])
            body = {"action": self.rng.choice(["accept", "dispatch", "close", "nope", "", "activate_plan", "change_level",
                                               "report", "check_item", "acknowledge", "end_response"]),
                    "version": case["version"]}
            for field in self.rng.sample(ACTION_FIELDS, k=self.rng.randint(1, 3)):
                body[field] = self.value()
            # a good action may succeed: only its refusals are checked for changes
            return self.send("api-action", self.api, "POST", f"/api/v1/events/{target}/actions", body, headers)
        if r < 0.85:
            target = self.rng.choice([str(self.case["id"]), str(BIG), "abc", "%00", "-1"])
            return self.send("api-get-one", self.api, "GET", f"/api/v1/events/{target}?{self.query(PARAMS)}",
                             headers=headers)
        if r < 0.9:  # the city's vital signs in: hostile readings, one or a list (a good one may be stored)
            reading = {"code": self.rng.choice(["aqi", "power_load", "nope", ""]), "ts": self.value(),
                       "value": self.value(), "unit": self.value(), "source": self.value()}
            for field in self.rng.sample(list(reading), k=self.rng.randint(0, 2)):
                del reading[field]
            body = self.rng.choice([reading, [reading, dict(reading, value=self.value())], self.value()])
            return self.send("api-vital", self.api, "POST", "/api/v1/indicators", body, headers)
        if r < 0.92:  # an emergency plan edited (admin) or read, with hostile bodies and codes
            code = self.rng.choice(["gas_leak", "fire", "nope", "%00", "x" * 300])
            body = self.rng.choice([self.value(), {"code": code, "name": self.value(), "criteria": self.value()}])
            return self.send("api-plan", self.api, self.rng.choice(["PUT", "GET"]), f"/api/v1/plans/{code}",
                             body, headers)
        if r < 0.94:
            code = self.rng.choice(["GOV-02", "nope", "%00", "x" * 300])
            body = {"value": self.value(), "as_of": self.value()}
            return self.send("api-indicator", self.api, self.rng.choice(["PUT", "GET"]), f"/api/v1/indicators/{code}",
                             body, headers)
        if r < 0.97:  # emergency resources: a case's allocations (the fuzz case is no emergency: all refused)
            target = self.rng.choice([str(self.case["id"]), str(BIG), "abc", "0"])
            if self.rng.random() < 0.6:
                body = {"resource": self.rng.choice(["XF-320402-001", "CK-320400-001", "BN-1", ""]), "item": "沙袋",
                        "quantity": 1}
                for field in self.rng.sample(RESOURCE_FIELDS, k=self.rng.randint(1, 3)):
                    body[field] = self.value()
                return self.send("api-resources", self.api, "POST", f"/api/v1/events/{target}/resources", body, headers)
            path = self.rng.choice([f"/api/v1/events/{target}/resources/{self.text()}", f"/api/v1/resources/{self.text()}",
                                    f"/api/v1/events/{target}/resources"])
            return self.send("api-resources", self.api, self.rng.choice(["GET", "DELETE"]), path, None, headers)
        return self.send("api-weird", self.api, self.rng.choice(["GET", "POST", "DELETE", "PATCH"]),
                         f"/api/v1/{self.text()}", None, headers)

    def page_request(self):
        client = self.clients[self.rng.choice(list(self.clients))]
        if self.rng.random() < 0.6:
            path = f"{self.rng.choice(PAGES)}?{self.query(PAGE_PARAMS)}"
        else:
            path = self.rng.choice(WEIRD_PATHS)
        return self.send("page", client, "GET", path)

    def callback_request(self):
        key = self.rng.choice(sorted(self.callbacks))
        entry = self.callbacks[key]
        client = self.clients[self.rng.choice(ROLES)]
        n = len(entry["inputs"]) + len(entry["state"])
        values = [self.value() for _ in range(n)]
        body = callback_body(key, entry, values, changed=self.rng.randrange(max(len(entry["inputs"]), 1)))
        if self.rng.random() < 0.05:  # the envelope itself broken
            body = self.rng.choice([{**body, "inputs": self.value()}, {**body, "output": self.value()},
                                    {**body, "changedPropIds": self.value()}, self.value()])
        # hostile inputs never make a case or a photo: a callback that accepted them must change nothing
        return self.send("callback", client, "POST", DASH_CALLBACK, body, csrf_header(client),
                         refused_if_2xx=True)

    def run(self, n: int) -> None:
        while self.sent < n:
            r = self.rng.random()
            if r < 0.45:
                self.api_request()
            elif r < 0.65:
                self.page_request()
            else:
                self.callback_request()


def test_no_request_answers_500_and_refusals_change_nothing(fuzz_app):
    app, photos = fuzz_app
    fuzzer = Fuzzer(app, photos, random.Random(SEED))
    started = time.perf_counter()
    fuzzer.run(REQUESTS)
    elapsed = time.perf_counter() - started
    print(f"fuzz: {fuzzer.sent} requests in {elapsed:.1f} s {fuzzer.kinds}")
    assert fuzzer.sent >= 2_000
    assert set(fuzzer.kinds) >= {"api-get", "api-intake", "api-action", "api-resources", "page", "callback"}
    assert not fuzzer.failures, f"{len(fuzzer.failures)} bad answers:\n" + "\n".join(fuzzer.failures[:30])
