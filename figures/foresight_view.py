"""The foresight services' answers shaped for a screen: forecast bands with the days before them, the backtest,
warnings, hot spots and what-if results, every code turned into the name a leader reads."""
from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta

from data.units_repo import active_units
from dispatch.city_time import local
from figures.case_counts import daily_counts

HISTORY_DAYS = 28  # the actual counts drawn before a forecast
KIND_LABELS = {"surge": "突增", "hotspot": "热点", "recurrent": "高发点位"}
STATUS_LABELS = {"open": "待处理", "acknowledged": "已确认", "tasked": "已转专项整治", "dismissed": "已忽略"}
WHATIF_ROWS = 40  # the units a what-if table lists (the largest changes)


def _get(item, name: str, default=None):
    """A field of a service's answer, a dict or a row object alike."""
    if isinstance(item, dict):
        return item.get(name, default)
    return getattr(item, name, default)


def _day(v) -> date:
    if isinstance(v, datetime):
        return local(v).date()
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v)[:10])


BOARD_TTL_S = 600.0  # a forecast of days moves little within minutes; fitting it costs seconds
_boards: dict[str, tuple[float, dict]] = {}
_board_lock = threading.Lock()


def cached_board(key: str, make) -> dict:
    """The forecast board under `key` (a database), made at most every BOARD_TTL_S; one make at a time."""
    hit = _boards.get(key)
    if hit is not None and time.monotonic() - hit[0] < BOARD_TTL_S:
        return hit[1]
    with _board_lock:
        hit = _boards.get(key)
        if hit is not None and time.monotonic() - hit[0] < BOARD_TTL_S:
            return hit[1]
        board = make()
        _boards[key] = (time.monotonic(), board)
        return board


# ---- forecast ------------------------------------------------------------------------------------------
def actual_counts(db, by: str, first: date, last: date) -> dict[str, dict[date, int]]:
    """{key: {local day: cases reported}} from `first` to `last`, every day present (0 where none came)."""
    with db.session() as s:
        frame = daily_counts(s, by, first, last)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    out: dict[str, dict[date, int]] = {}
    for key, day, count in frame[["key", "day", "count"]].itertuples(index=False):
        out.setdefault(str(key), {d: 0 for d in days})[day.date()] = int(count)
    return out


def forecast_board(db, areas, forecast: dict, history_days: int = HISTORY_DAYS) -> dict:
    """Per district: the forecast days (expected, lower, upper) and the `history_days` of actual counts before
    them; the districts by name; the backtest rows. `forecast`: ForecastService.forecast(by="district", …)."""
    series: dict[str, dict] = {}
    for it in sorted(forecast.get("items") or [], key=lambda i: (str(i["key"]), str(i["date"]))):
        s = series.setdefault(str(it["key"]), {"dates": [], "expected": [], "lower": [], "upper": []})
        s["dates"].append(_day(it["date"]).isoformat())
        for k in ("expected", "lower", "upper"):
            s[k].append(None if it.get(k) is None else round(float(it[k]), 2))
    names = {code: _area_name(areas, code) for code in series}
    if not series:
        return {"districts": [], "series": {}, "backtest": backtest_rows(forecast.get("backtest"), names)}
    first = min(date.fromisoformat(s["dates"][0]) for s in series.values())
    start, end = first - timedelta(days=history_days), first - timedelta(days=1)
    actual = actual_counts(db, "district", start, end)
    days = [start + timedelta(days=i) for i in range(history_days)]
    for code, s in series.items():
        got = actual.get(code, {})
        s["actual_dates"] = [d.isoformat() for d in days]
        s["actual"] = [got.get(d, 0) for d in days]
        s["name"] = names[code]
    districts = sorted(({"code": c, "name": n} for c, n in names.items()), key=lambda d: d["code"])
    return {"districts": districts, "series": series, "backtest": backtest_rows(forecast.get("backtest"), names)}


def _area_name(areas, code) -> str:
    rec = areas.get(code) if code else None
    return rec.name if rec is not None else "—"


def backtest_rows(backtest, names: dict[str, str]) -> list[dict]:
    """The backtest per key (the districts'): model error, seasonal-naive error, the metric, and which is used
    (模型 / 基准); a key the forecast does not name is left out. `backtest`: the forecast's, its `keys` a list of
    {key, model_error, baseline_error, used: model | baseline}."""
    if not isinstance(backtest, dict):
        return []
    rows = []
    for b in backtest.get("keys") or []:
        key = b.get("key") if isinstance(b, dict) else None
        if key not in names:
            continue
        rows.append({"code": key, "name": names[key], "model_error": b.get("model_error"),
                     "baseline_error": b.get("baseline_error"), "metric": backtest.get("metric") or "",
                     "used": "模型" if b.get("used") == "model" else "基准"})
    return sorted(rows, key=lambda r: r["code"])


# ---- warnings ------------------------------------------------------------------------------------------
def warning_rows(items, areas, category_names: dict[str, str]) -> list[dict]:
    """The warnings as a list shows them: kind, place and category by name, observed vs expected, the window
    (local time) and the status, newest first as the service gave them."""
    rows = []
    for w in items or []:
        area = _get(w, "area_code") or _get(w, "area")
        if isinstance(area, dict):
            area = area.get("code")
        category = _get(w, "category_code") or _get(w, "category")
        if isinstance(category, dict):
            category = category.get("code")
        kind, status = _get(w, "kind"), _get(w, "status") or "open"
        start, end = _get(w, "window_start"), _get(w, "window_end")
        expected = _get(w, "expected")
        rows.append({
            "id": _get(w, "id"), "kind": kind, "kind_label": KIND_LABELS.get(kind, "预警"),
            "place": _place(areas, area, _get(w, "district_code") or _get(w, "district")),
            **_split_place(areas, area, _get(w, "district_code") or _get(w, "district")),
            "category": category_names.get(category, "—") if category else "全部类别",
            "observed": int(_get(w, "observed") or 0),
            "expected": None if expected is None else round(float(expected), 1),
            "window": window_text(start, end), "status": status, "status_label": STATUS_LABELS.get(status, status),
            "open": status == "open", "case_id": _get(w, "case_id"),
        })
    return rows


def _place(areas, area_code, district_code=None) -> str:
    """A place as a leader names it: the district, then the area (a grid: its street too)."""
    chain = areas.chain(area_code) if area_code else []
    if not chain:
        return _area_name(areas, district_code) if district_code else "—"
    by_level = {a.level: a.name for a in chain}
    parts = [by_level.get(2)] + [by_level.get(lv) for lv in (3, 5) if lv in by_level]
    here = chain[0].name
    names = [p for p in parts if p]
    if here not in names:
        names.append(here)
    return " ".join(names)


def _split_place(areas, area_code, district_code=None) -> dict:
    """{district: its name, spot: the place below it} — the wall names them on two lines."""
    chain = areas.chain(area_code) if area_code else []
    district = next((a.name for a in chain if a.level == 2), None) or (_area_name(areas, district_code)
                                                                        if district_code else "—")
    below = [a.name for a in reversed(chain) if a.level in (3, 5) or (a is chain[0] and a.level > 2)]
    return {"district": district, "spot": " ".join(dict.fromkeys(below)) or district}


def window_text(start, end) -> str:
    """A warning's window as a duty officer reads it: whole local days as days (a surge's day: "12-08 当日"; a
    hotspot's 7 days: "12-01–12-07", the end day the last one counted), other windows to the minute."""
    if start is None or end is None:
        return "—"
    a, b = local(_dt(start)), local(_dt(end))
    whole_days = a.time() == b.time() == datetime.min.time() and b > a
    if whole_days:
        last = (b - timedelta(days=1)).date()
        return f"{a:%m-%d} 当日" if last == a.date() else f"{a:%m-%d}–{last:%m-%d}"
    if a.date() == b.date() or (b - a) <= timedelta(days=1):
        return f"{a:%m-%d %H:%M}–{b:%m-%d %H:%M}"
    return f"{a:%m-%d}–{b:%m-%d}"


def _dt(v) -> datetime:
    return v if isinstance(v, datetime) else datetime.fromisoformat(str(v))


MARKED = 60  # the hot spots of each kind a map marks at most (each read with its evidence)


def with_evidence(warnings, principal, items) -> list:
    """The open or acknowledged hotspots and recurring spots among `items` (a list's, newest first), each read
    again with its evidence (the cluster's grids, the spot's centre) through the warning service; at most MARKED
    of each kind."""
    out, taken = [], {"hotspot": 0, "recurrent": 0}
    for w in items or []:
        kind = _get(w, "kind")
        if kind in taken and taken[kind] < MARKED and (_get(w, "status") or "open") in ("open", "acknowledged"):
            taken[kind] += 1
            out.append(w if _get(w, "evidence") is not None else warnings.get(_get(w, "id"), principal))
    return out


def hotspot_marks(items, areas) -> dict:
    """The open hot grids (their codes) and recurring spots (a point each, with its name and count) to mark on a
    map; other kinds are not places."""
    grids, spots = [], []
    for w in items or []:
        if (_get(w, "status") or "open") not in ("open", "acknowledged"):
            continue
        kind = _get(w, "kind")
        area = _get(w, "area_code") or _get(w, "area")
        if isinstance(area, dict):
            area = area.get("code")
        if kind == "hotspot" and area:
            # the cluster's significant grids (the evidence of WarningService.get), else the warned grid
            cluster = [g.get("code") for g in (_get(w, "evidence") or {}).get("grids") or [] if isinstance(g, dict)]
            grids += [g for g in cluster if g] or [area]
        elif kind == "recurrent":
            ev = _get(w, "evidence") or {}
            centre = ev.get("centre") or ev.get("center")
            if isinstance(centre, (list, tuple)) and len(centre) == 2:
                lon, lat = float(centre[0]), float(centre[1])
            elif "lon" in ev and "lat" in ev:
                lon, lat = float(ev["lon"]), float(ev["lat"])
            else:
                rec = areas.get(area) if area else None
                if rec is None:
                    continue
                pt = rec.geometry.representative_point()
                lon, lat = pt.x, pt.y
            spots.append({"lon": round(lon, 6), "lat": round(lat, 6), "name": _place(areas, area),
                          "count": int(_get(w, "observed") or 0)})
    return {"grids": list(dict.fromkeys(grids)), "spots": spots}


# ---- what-if -------------------------------------------------------------------------------------------
def unit_options(db, area_codes: set[str] | None = None) -> list[dict]:
    """The active units as dropdown options (name shown, code the value), of the areas given or all."""
    with db.session() as s:
        rows = active_units(s)
    return [{"label": name, "value": code} for code, name, area in rows
            if area_codes is None or area in area_codes]


def whatif_rows(result, unit_names: dict[str, str], limit: int = WHATIF_ROWS) -> dict:
    """A what-if result (foresight/whatif.py: per unit and for the city, the baseline and the changed run) as its
    table: per unit the expected overdue cases, on-time rate and score of both runs and their differences, the
    largest change of overdue cases first (then of score), at most `limit` units; and the city's line."""
    if not isinstance(result, dict):
        return {"rows": [], "totals": None, "more": 0}
    rows = []
    for u in result.get("units") or []:
        code = u.get("code")
        rows.append(_compare(unit_names.get(code) or u.get("name") or "—", u.get("baseline") or {},
                             u.get("changed") or {}))
    rows.sort(key=lambda r: (-abs(r["overdue_delta"] or 0), -abs(r["score_delta"] or 0), r["name"]))
    # a unit the change leaves as it was (every difference below what the table shows) is counted, not listed
    moved = [r for r in rows if abs(r["overdue_delta"] or 0) >= 0.05 or abs(r["score_delta"] or 0) >= 0.05
             or abs(r["rate_delta"] or 0) >= 0.0005]
    city = result.get("city")
    totals = _compare("全市合计", city.get("baseline") or {}, city.get("changed") or {}) if isinstance(city, dict) else None
    return {"rows": moved[:limit], "totals": totals, "more": len(rows) - min(len(moved), limit)}


def _compare(name: str, base: dict, changed: dict) -> dict:
    def diff(k):
        a, b = base.get(k), changed.get(k)
        return None if a is None or b is None else round(b - a, 4)

    return {"name": name,
            "overdue_base": base.get("overdue"), "overdue_changed": changed.get("overdue"),
            "overdue_delta": diff("overdue"),
            "rate_base": base.get("on_time_rate"), "rate_changed": changed.get("on_time_rate"),
            "rate_delta": diff("on_time_rate"),
            "score_base": base.get("score"), "score_changed": changed.get("score"), "score_delta": diff("score")}
