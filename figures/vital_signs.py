"""The city's vital signs shaped for the screens: each indicator's latest value, freshness, change and sparkline (the
wall's theme panels, the cockpit's module) and its 24 h / 7 d series (the cockpit's chart).

Reads data.indicator_readings only; which indicators exist, their panel, theme and freshness come from
data/catalog/city_indicators.json (files.city_indicators). A value older than its indicator's `fresh_s` is
``stale``; a panel with no reading at all is ``empty`` (the screens say so, never a made-up number); a reading
whose source is the demo feeder (the catalog's demo_source_prefix) is ``demo`` (the screens badge it 演示数据).
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from data import files
from data.indicator_readings import latest_before, read_series
from dispatch.city_time import local, local_iso
from dispatch.indicators import PANELS, IndicatorCatalog, IndicatorSpec

SPARK_POINTS = 48  # the wall's sparkline: the last 24 hours in half-hour means
RANGES = {"24h": (timedelta(hours=24), None), "7d": (timedelta(days=7), 3600)}  # span, bucket seconds (None: raw)


def fmt(value: float | None, decimals: int) -> str:
    return "—" if value is None else f"{value:,.{decimals}f}"


def _when(ts: datetime, now: datetime) -> str:
    t, n = local(ts), local(now)
    return t.strftime("%H:%M") if t.date() == n.date() else t.strftime("%m-%d %H:%M")


def _buckets(rows, start: datetime, seconds: float, n: int | None = None) -> list:
    """Means of `rows` ((ts, value, …)) per `seconds` from `start`: [(bucket start, mean)], empty buckets left out
    (or, with `n`, a list of n means with None for the empty ones)."""
    acc: dict[int, list[float]] = {}
    for row in rows:
        k = int((row[0] - start).total_seconds() // seconds)
        acc.setdefault(k, []).append(row[1])
    if n is not None:
        return [None if k not in acc else sum(acc[k]) / len(acc[k]) for k in range(n)]
    return [(start + timedelta(seconds=k * seconds), sum(v) / len(v)) for k, v in sorted(acc.items())]


def latest_item(s: Session, spec: IndicatorSpec, catalog: IndicatorCatalog, now: datetime,
                spark: bool = True) -> dict:
    """One indicator's latest reading as the screens show it (value None: no reading yet)."""
    item = {"code": spec.code, "name": spec.name, "unit": spec.unit, "value": None, "text": "—", "ts": None,
            "when": "", "source": None, "source_label": "", "demo": False, "stale": False, "age_s": None,
            "delta": None, "delta_text": "", "spark": []}
    row = latest_before(s, spec.code, now)
    if row is None:
        return item
    ts, value, _unit, source = row
    age = (now - ts).total_seconds()
    demo = catalog.is_demo(source)
    item.update(value=value, text=fmt(value, spec.decimals), ts=local_iso(ts), when=_when(ts, now), source=source,
                source_label=source[len(catalog.demo_source_prefix):] if demo else source, demo=demo,
                stale=age > spec.fresh_s, age_s=round(age))
    # the change since the same time yesterday (a reading within the indicator's freshness of it)
    day_ago = ts - timedelta(days=1)
    before = latest_before(s, spec.code, day_ago)
    if before is not None and (day_ago - before[0]).total_seconds() <= spec.fresh_s:
        delta = round(value - before[1], spec.decimals)
        item["delta"] = delta
        item["delta_text"] = ("较昨日同时 " + ("+" if delta > 0 else "±" if delta == 0 else "−")
                              + fmt(abs(delta), spec.decimals))
    if spark:
        start = now - timedelta(hours=24)
        means = _buckets(read_series(s, spec.code, start, now), start, 24 * 3600 / SPARK_POINTS, SPARK_POINTS)
        item["spark"] = [None if v is None else round(v, spec.decimals + 1) for v in means]
    return item


def wall_panels(s: Session, now: datetime, catalog: IndicatorCatalog | None = None) -> dict:
    """{panel key: {title, items, empty, demo, stale}} for the wall's four theme panels (safety, traffic, utilities,
    economy): `empty` when none of its indicators has a reading, `demo` when a shown value comes from the demo feeder."""
    catalog = catalog or files.city_indicators()
    out = {}
    for key, title in PANELS.items():
        items = [latest_item(s, spec, catalog, now) for spec in catalog.of_panel(key)]
        shown = [i for i in items if i["value"] is not None]
        out[key] = {"title": title, "items": items, "empty": not shown, "demo": any(i["demo"] for i in shown),
                    "stale": any(i["stale"] for i in shown)}
    return out


SHARE_S = 15.0  # the wall's screens re-read the snapshot after every burst of cases; the readings come every few minutes
_shared: dict[str, tuple[float, datetime, dict]] = {}


def wall_panels_shared(s: Session, key: str, now: datetime) -> dict:
    """:func:`wall_panels` for the database `key`, read again only after SHARE_S, for another `now` (more than SHARE_S
    apart) or once a reading was stored in this process (:func:`forget`, called by sensing.indicators): about 10 ms a
    read with a week of readings, and the wall's snapshot is re-read after each burst of case events."""
    hit = _shared.get(key)
    if hit is not None and time.monotonic() - hit[0] < SHARE_S and abs((now - hit[1]).total_seconds()) < SHARE_S:
        return hit[2]
    out = wall_panels(s, now)
    _shared[key] = (time.monotonic(), now, out)
    return out


def forget(key: str) -> None:
    """New readings were stored in the database `key`: the next wall snapshot reads them."""
    _shared.pop(key, None)


def theme_view(s: Session, theme: str | None, now: datetime, code: str | None = None, span: str = "24h",
               catalog: IndicatorCatalog | None = None) -> dict:
    """The cockpit's module for a theme: `items` (latest values of the theme's indicators), the charted indicator
    `code` (the one asked for if it is the theme's, else the first) and its `series` over `span` (24h: every
    reading; 7d: hourly means): {name, unit, decimals, x: [ISO local], y: []}. No indicator for the theme: items []."""
    catalog = catalog or files.city_indicators()
    specs = catalog.of_theme(theme)
    items = [latest_item(s, spec, catalog, now, spark=False) for spec in specs]
    if not specs:
        return {"items": [], "code": None, "span": span, "series": None}
    spec = next((x for x in specs if x.code == code), specs[0])
    length, bucket = RANGES.get(span, RANGES["24h"])
    start = now - length
    rows = read_series(s, spec.code, start, now)
    points = [(r[0], r[1]) for r in rows] if bucket is None else _buckets(rows, start, bucket)
    return {"items": items, "code": spec.code, "span": span if span in RANGES else "24h",
            "series": {"name": spec.name, "unit": spec.unit, "decimals": spec.decimals,
                       "x": [local_iso(t) for t, _v in points],
                       "y": [round(v, spec.decimals + 1) for _t, v in points]}}


def cockpit_module(db, theme: str | None, now: datetime, code: str | None = None, span: str = "24h") -> dict:
    """:func:`theme_view` in its own read (the cockpit's callback holds no session)."""
    with db.session() as s:
        return theme_view(s, theme, now, code, span)
