// The wall's clientside half (/wall): the live stream, the merged state, the deck.gl specs and the panels.
//
// The live stream is read here, not through a Dash callback input: Dash merges quick successive
// prop changes into one callback call, so a burst (a replay after a reconnect, a merge's two
// events) would lose messages. assets/live_client.js speaks Socket.IO (namespace /live, auth
// {token} or the signed-in session, `resync {since}` on every connect, every seq handed over once);
// this file merges the cases and hands Dash whole states through dash_clientside.set_props, where
// merging is harmless.
(function () {
  "use strict";
  var W = window.uccWall = window.uccWall || {};
  var NS = "/live";
  var DAY_MS = 86400000;
  var STALE_AFTER_MS = 120000;
  var PULSE_MS = 2000, PULSE_RINGS = 3, PULSE_GAP_MS = 650, FRESH_MS = 60000;
  var KIND_COLOURS = {component: [79, 195, 247], event: [255, 202, 40], grid: [129, 212, 140], emergency: [255, 72, 66]};
  var RAMPS = {
    open: [[38, 92, 160], [36, 150, 190], [60, 200, 190], [240, 205, 80], [245, 130, 50], [235, 70, 70]],
    overdue: [[120, 50, 80], [170, 50, 75], [215, 60, 60], [245, 110, 55], [255, 170, 70], [255, 225, 120]]
  };
  var HEAT_COLOURS = [[26, 61, 110], [31, 111, 166], [42, 163, 184], [127, 209, 160], [242, 209, 95], [245, 124, 58]];
  // The device layer: the fleet by street (its own map view), offline devices, and the open alarms by severity.
  var SEVERITIES = ["critical", "major", "minor", "warning"];
  // the same palette as layouts/device_chart.py SEVERITY_RGB (charts, the cockpit map)
  var ALARM_COLOURS = {critical: [255, 45, 85], major: [255, 138, 36], minor: [255, 214, 10], warning: [120, 200, 255]};
  var FLEET_COLOUR = [52, 211, 175], OFFLINE_COLOUR = [150, 160, 178];
  var TICKER_ALARMS = 4;
  var WARN_GRID = [255, 120, 60], WARN_SPOT = [255, 214, 10];  // as the cockpit's hot-spot layer

  W.live = W.live || {cases: new Map(), created: new Map(), alarms: new Map(), maxSeq: null, rev: 0};
  W.pulses = W.pulses || new Map();
  W.connected = false;
  W.lastMsgAt = 0;
  W.lastRefreshAt = 0;
  W.marks = {};

  // ---- the map's static half (boundaries, grid shapes): fetched while the other scripts load ----------
  // (api/wall.py; made once per hierarchy version and kept by the browser). The layout arrives
  // later with the version it expects in cfg.base_v; a mismatch (a new import) fetches again.
  function loadBase() {
    if (W.baseLoading) { return; }
    W.baseLoading = true;
    fetch("/wall/base.json", {credentials: "same-origin", cache: "no-cache"}).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    }).then(function (data) {
      W.baseLoading = false;
      W.mapBase = data;
      if (W.cfg) { redrawBase(); }
    }).catch(function () {
      W.baseLoading = false;
      setTimeout(function () { if (!W.mapBase || (W.cfg && W.mapBase.v !== W.cfg.base_v)) { loadBase(); } }, 5000);
    });
  }
  function baseReady(cfg) {
    if (W.mapBase && W.mapBase.v === cfg.base_v) { return true; }
    loadBase();
    return false;
  }
  // `base` listens to the viewport store: writing it redraws the base (set_props, outside the graph).
  function redrawBase() {
    setProps("wall-viewport", {data: {w: window.innerWidth, h: window.innerHeight, at: Date.now()}});
  }
  if (/^\/wall\/?$/.test(window.location.pathname)) { loadBase(); }

  // ---- small helpers ---------------------------------------------------------------------------
  function nu() { return window.dash_clientside.no_update; }
  function h(tag, props, children) {
    var p = Object.assign({}, props || {});
    if (children !== undefined) { p.children = children; }
    return {type: tag, namespace: "dash_html_components", props: p};
  }
  // The lists redrawn on every live event (ticker, trend, ranking, emergencies, …) are written into
  // their empty Dash containers here, not returned as Dash children: Dash 4 dispatches a store action
  // for every component it replaces and runs every component's selector on each action (about 480
  // actions and 0.5 s of main thread per new case on the wall, which made a case reach the ticker 0.8
  // to 2.4 s after its 201). Dash never renders children into these containers, so React leaves them be.
  function toNode(c) {
    if (c === null || c === undefined || c === false) { return null; }
    if (typeof c !== "object") { return document.createTextNode(String(c)); }
    if (Array.isArray(c)) {
      var frag = document.createDocumentFragment();
      c.forEach(function (x) { var n = toNode(x); if (n) { frag.appendChild(n); } });
      return frag;
    }
    var el = document.createElement(c.type.toLowerCase()), p = c.props || {};
    if (p.className) { el.className = p.className; }
    if (p.id) { el.id = p.id; }
    if (p.style) { Object.assign(el.style, p.style); }
    var kids = toNode(p.children);
    if (kids) { el.appendChild(kids); }
    return el;
  }
  function sameNode(a, b) {
    return a.nodeType === b.nodeType && (a.nodeType === 1 ? a.outerHTML === b.outerHTML : a.data === b.data);
  }
  // Children that did not change stay in place (a new ticker row is inserted above the others, whose
  // arrival animation goes on undisturbed).
  function paint(id, children, className) {
    var el = document.getElementById(id);
    if (!el) { return; }
    if (className !== undefined && el.className !== className) { el.className = className; }
    var want = Array.prototype.slice.call(toNode([].concat(children)).childNodes);
    var cur = el.firstChild;
    want.forEach(function (n) {
      if (cur && sameNode(cur, n)) { cur = cur.nextSibling; return; }
      if (cur && cur.nextSibling && sameNode(cur.nextSibling, n)) {  // cur was replaced or dropped
        var gone = cur;
        cur = cur.nextSibling.nextSibling;
        el.removeChild(gone);
        return;
      }
      el.insertBefore(n, cur);
    });
    while (cur) { var next = cur.nextSibling; el.removeChild(cur); cur = next; }
  }
  function fmtInt(v) { return (v === null || v === undefined) ? "—" : Number(v).toLocaleString("zh-CN"); }
  function fmtRate(v) { return (v === null || v === undefined) ? "—" : Number(v).toFixed(1); }
  function hhmm(iso) { return iso ? iso.slice(11, 16) : ""; }
  function scale() { return Math.max(1, window.innerHeight / 1080); }
  function setProps(id, props) {
    if (window.dash_clientside && window.dash_clientside.set_props) { window.dash_clientside.set_props(id, props); }
  }
  function nameAt(chain, level) {
    for (var i = 0; i < (chain || []).length; i++) { if (chain[i].level === level) { return chain[i].name; } }
    return "";
  }
  function isOpen(state) { return ["rejected", "merged", "closed", "voided"].indexOf(state) < 0; }

  // ---- the map's view: the city fitted into the map box, the same for both decks ------------------
  W.view = function (bounds) {
    var el = document.getElementById("wall-map-box");
    var box = el ? el.getBoundingClientRect() : null;
    var w = box && box.width > 0 ? box.width : window.innerWidth;
    var hgt = box && box.height > 0 ? box.height : window.innerHeight;
    // Keep the city clear of the legend band at the bottom and the title line at the top.
    var rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
    var bottom = 5.4 * rem;  // .wall-legend: 4.2rem tall, 0.6rem above the bottom edge
    var top = 3.2 * rem, free = Math.max(hgt - top - bottom, hgt * 0.5);
    function my(lat) { var s = Math.sin(lat * Math.PI / 180); return 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI); }
    var minx = bounds[0], miny = bounds[1], maxx = bounds[2], maxy = bounds[3];
    var dx = (maxx - minx) / 360, dy = Math.abs(my(miny) - my(maxy));
    var zoom = Math.min(Math.log2(w * 0.95 / (512 * dx)), Math.log2(free * 0.97 / (512 * dy)));
    var k = 512 * Math.pow(2, zoom);
    // The city's centre goes to the middle of the free band: move the view's centre accordingly.
    var cy = (my(miny) + my(maxy)) / 2 + ((top + free / 2) - hgt / 2) * -1 / k;
    var lat = Math.atan(Math.sinh(Math.PI * (1 - 2 * cy))) * 180 / Math.PI;
    return {longitude: (minx + maxx) / 2, latitude: lat, zoom: zoom, pitch: 0, bearing: 0, width: w, height: hgt};
  };
  // Screen position of a point inside the map box (Web Mercator, as deck.gl draws it).
  W.project = function (lon, lat) {
    var v = W.lastView;
    if (!v) { return null; }
    function mx(x) { return (x + 180) / 360; }
    function my(y) { var s = Math.sin(y * Math.PI / 180); return 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI); }
    var k = 512 * Math.pow(2, v.zoom);
    return [v.width / 2 + (mx(lon) - mx(v.longitude)) * k, v.height / 2 + (my(lat) - my(v.latitude)) * k];
  };

  function withLayers(template, view, patch) {
    var spec = {};
    // outlines and labels ride along in the base template for the page, not for deck.gl
    Object.keys(template).forEach(function (k) { if (k !== "outlines" && k !== "labels") { spec[k] = template[k]; } });
    spec.initialViewState = {longitude: view.longitude, latitude: view.latitude, zoom: view.zoom, pitch: 0, bearing: 0};
    spec.layers = template.layers.map(function (layer) {
      var p = patch[layer.id];
      return p ? Object.assign({}, layer, p) : layer;
    });
    return spec;
  }

  // Boundary rings (flat [x0, y0, x1, y1, ...]) as the LineLayer's segments, made once per template.
  function segments(base, id) {
    W.segs = W.segs || {};
    if (W.segs[id] && W.segsFor === base) { return W.segs[id]; }
    if (W.segsFor !== base) { W.segs = {}; W.segsFor = base; }
    var out = [];
    ((base.outlines || {})[id] || []).forEach(function (ring) {
      for (var i = 0; i + 3 < ring.length; i += 2) { out.push({s: [ring[i], ring[i + 1]], t: [ring[i + 2], ring[i + 3]]}); }
      var n = ring.length;
      if (n >= 4) { out.push({s: [ring[n - 2], ring[n - 1]], t: [ring[0], ring[1]]}); }
    });
    W.segs[id] = out;
    return out;
  }

  // District names as HTML over the map: crisp at any size, and no font atlas or text shader to
  // build before the first frame.
  function areaLabels(base) {
    var out = [];
    (base.labels || []).forEach(function (l) {
      var xy = W.project(l.position[0], l.position[1]);
      if (!xy) { return; }
      out.push(h("Div", {className: "wall-area-label", style: {left: Math.round(xy[0]) + "px", top: Math.round(xy[1]) + "px"}}, l.name));
    });
    return out;
  }

  // ---- decoding what the server sends compactly -------------------------------------------------
  // layouts/wall.py _varints: zigzag integers, 5 bits a character, 32 = more to come.
  var B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", B64I = {};
  for (var bi = 0; bi < B64.length; bi++) { B64I[B64.charAt(bi)] = bi; }
  function varints(text) {
    var out = [], z = 0, shift = 0;
    for (var i = 0; i < text.length; i++) {
      var v = B64I[text.charAt(i)];
      z += (v & 31) * Math.pow(2, shift);
      if (v & 32) { shift += 5; continue; }
      out.push(z % 2 ? -(z + 1) / 2 : z / 2);
      z = 0; shift = 0;
    }
    return out;
  }

  function decodeGeo(geo) {
    if (W.geoV === geo.v && W.rings) { return W.rings; }
    var x0 = geo.origin[0], y0 = geo.origin[1], q = geo.q, rings = [];
    for (var i = 0; i < geo.rings.length; i++) {
      var flat = varints(geo.rings[i]), x = 0, y = 0, poly = [];
      for (var j = 0; j < flat.length; j += 2) {
        x = j === 0 ? flat[0] : x + flat[j];
        y = j === 0 ? flat[1] : y + flat[j + 1];
        poly.push([x0 + x / q, y0 + y / q]);
      }
      rings.push({g: geo.index ? geo.index[i] : i, p: poly});
    }
    W.geoV = geo.v;
    W.rings = rings;
    return rings;
  }
  function decodeHeat(heat) {
    if (!heat) { return []; }
    if (W.heatSrc === heat) { return W.heatPts; }
    var out = [], x0 = heat.origin[0], y0 = heat.origin[1], q = heat.q, xy = heat.xy;
    for (var i = 0; i < xy.length; i += 2) { out.push([x0 + xy[i] / q, y0 + xy[i + 1] / q]); }
    W.heatSrc = heat;
    W.heatPts = out;
    return out;
  }
  function classOf(v, breaks) {
    var k = -1;
    for (var i = 0; i < breaks.length; i++) { if (v >= breaks[i]) { k = i; } }
    return k;
  }
  function rampColour(mode, k, n) {
    var ramp = RAMPS[mode];
    var idx = n <= 1 ? 2 : Math.round(k * (ramp.length - 1) / (n - 1));
    return ramp[Math.max(0, Math.min(ramp.length - 1, idx))];
  }

  // ---- the base deck: boundaries, grids coloured by open or overdue cases, the hexagon view ----------
  function chip(colour, text, cls) {
    return h("Span", {className: "wall-legend-item"}, [
      h("Span", {className: cls || "wall-legend-dot", style: {background: "rgb(" + colour.join(",") + ")"}}), text]);
  }

  function legendFor(mode, agg, cfg) {
    var first;
    if (mode === "devices") {
      var dv = (agg && agg.devices) || {counts: {}, total: 0}, n = dv.counts || {};
      first = [h("Span", {className: "wall-legend-title"}, "物联设备 " + fmtInt(dv.total) + " 台")].concat([
        chip(FLEET_COLOUR, "按街道聚合（圈越大设备越多）", "wall-legend-dot is-cluster"),
        chip(FLEET_COLOUR, "在线 " + fmtInt(n.online)), chip(OFFLINE_COLOUR, "离线 " + fmtInt(n.offline)),
        chip(ALARM_COLOURS.critical, "告警 " + fmtInt(n.alarm)),
        h("Span", {className: "wall-legend-item"}, "维护 " + fmtInt(n.maintenance))]);
      var labels = ((agg && agg.alarms) || {}).severity_labels || {};
      var by = ((agg && agg.alarms) || {}).by_severity || {};
      var second2 = [h("Span", {className: "wall-legend-title"}, "物联告警")].concat(SEVERITIES.map(function (sv) {
        return chip(ALARM_COLOURS[sv], (labels[sv] || sv) + " " + fmtInt(by[sv] || 0), "wall-legend-dot is-alarm");
      }));
      return [h("Div", {className: "wall-legend-row"}, first), h("Div", {className: "wall-legend-row"}, second2)];
    }
    if (mode === "heat") {
      first = [h("Span", {className: "wall-legend-title"}, "近7日案件数")].concat(
        [h("Span", {className: "wall-legend-ends"}, "少")],
        [h("Span", {className: "wall-legend-ramp"}, HEAT_COLOURS.map(function (c) {
          return h("Span", {className: "wall-legend-chip", style: {background: "rgb(" + c.join(",") + ")"}});
        }))],
        [h("Span", {className: "wall-legend-ends"}, "多（每六边形）")]);
    } else {
      var breaks = (agg && agg.breaks && agg.breaks[mode]) || [1];
      first = [h("Span", {className: "wall-legend-title"}, mode === "open" ? "网格在办案件" : "网格超期案件")].concat(
        breaks.map(function (b, i) {
          var hi = i + 1 < breaks.length ? breaks[i + 1] - 1 : null;
          var text = hi === null ? (b + " 件及以上") : (hi === b ? (b + " 件") : (b + "–" + hi + " 件"));
          var c = rampColour(mode, i, breaks.length);
          return h("Span", {className: "wall-legend-item"}, [
            h("Span", {className: "wall-legend-chip", style: {background: "rgb(" + c.join(",") + ")"}}), text]);
        }));
    }
    var second = [h("Span", {className: "wall-legend-title"}, "今日案件")].concat(cfg.kinds.map(function (k) {
      var c = KIND_COLOURS[k];
      return h("Span", {className: "wall-legend-item"}, [
        h("Span", {className: "wall-legend-dot" + (k === "emergency" ? " is-emergency" : ""),
                   style: {background: "rgb(" + c.join(",") + ")"}}), cfg.kind_labels[k]]);
    }), [h("Span", {className: "wall-legend-item"}, [h("Span", {className: "wall-legend-ring"}), "新上报（闪烁）"]),
         chip(ALARM_COLOURS.critical, "物联告警", "wall-legend-dot is-alarm")]);
    if (mode !== "heat" && agg && agg.warnings && (agg.warnings.marks || []).length) {
      first = first.concat([h("Span", {className: "wall-legend-item wall-legend-warn"}, [
        h("Span", {className: "wall-legend-ring", style: {borderColor: "rgb(" + WARN_GRID.join(",") + ")"}}), "预警热点",
        h("Span", {className: "wall-legend-ring", style: {borderColor: "rgb(" + WARN_SPOT.join(",") + ")"}}), "高发点位"])]);
    }
    return [h("Div", {className: "wall-legend-row"}, first), h("Div", {className: "wall-legend-row"}, second)];
  }

  // ---- the emergency mode: the gravest active response of level III or higher takes the map over ----------
  var TAKEOVER_LEVEL = 3;
  function takeoverOf(agg) {
    var list = (agg && agg.responses) || [];
    for (var i = 0; i < list.length; i++) { if (list[i].level <= TAKEOVER_LEVEL) { return list[i]; } }
    return null;
  }
  function span(ms) {
    var m = Math.floor(Math.abs(ms) / 60000), hh = Math.floor(m / 60), mm = m % 60;
    return hh ? hh + "小时" + (mm < 10 ? "0" : "") + mm + "分" : m + "分钟";
  }
  // Painted every second (the countdowns move), from the last snapshot's response.
  function paintTakeover() {
    var r = W.takeover;
    if (!r) { paint("wall-emg", null, "wall-emg"); return; }
    var now = Date.now(), owed = r.next_report, report = "无待报信息", late = false;
    if (owed) {
      var left = Date.parse(owed.due_at) - now;
      late = left < 0;
      report = owed.kind_label + (late ? " 已超时 " + span(left) : " 剩余 " + span(left));
    }
    var since = span(now - Date.parse(r.activated_at));
    var units = (r.tasks || []).map(function (t) {
      return h("Span", {className: "wall-emg-unit" + (t.acknowledged ? " is-ack" : t.overdue ? " is-late" : "")},
               (t.acknowledged ? "✔ " : t.overdue ? "✖ " : "○ ") + t.unit + (t.role === "lead" ? "（牵头）" : ""));
    });
    paint("wall-emg", [
      h("Div", {className: "wall-emg-head"}, [
        h("Span", {className: "wall-emg-level lv-" + r.level}, r.response_name || r.level_label),
        h("Span", {className: "wall-emg-what"}, r.category + " · " + (r.place || "")),
        h("Span", {className: "wall-emg-plan"}, "《" + r.plan.name + "》 · " + (r.commanding_level === 1 ? "市级" : "区级") +
          "指挥 · 已启动 " + since)
      ]),
      h("Div", {className: "wall-emg-units"}, units),
      h("Div", {className: "wall-emg-foot"}, [
        h("Span", {className: "wall-emg-report" + (late ? " is-late" : "")}, report),
        h("Span", {className: "wall-emg-check"}, "处置措施 " + r.checklist_done + "/" + r.checklist_total)
      ])
    ], "wall-emg is-on" + (late ? " is-late" : ""));
  }

  // The view both decks draw: the city fitted into the map box, or in the emergency mode the event at street scale.
  function mapView(agg, cfg) {
    var view = W.view(cfg.bounds), focus = takeoverOf(agg);
    if (focus) {
      view = Object.assign({}, view, {longitude: focus.lon, latitude: focus.lat, zoom: Math.max(view.zoom + 2.5, 12.5)});
    }
    return view;
  }

  function baseSpec(agg, heat, mode, cfg) {
    var view = mapView(agg, cfg);
    W.lastView = view;
    var base = W.mapBase.base;
    var rings = decodeGeo(W.mapBase.geo);
    var grids = {};
    ((agg && agg.grids) || []).forEach(function (r) { grids[r[0]] = [r[1], r[2]]; });
    var breaks = (agg && agg.breaks && agg.breaks[mode]) || [1];
    var at = mode === "overdue" ? 1 : 0;
    // Only the grids with a case are drawn (no outlines: 5,891 outlines cost more than all the rest).
    var rows = [];
    for (var i = 0; i < rings.length && mode !== "heat" && mode !== "devices"; i++) {
      var c = grids[rings[i].g];
      if (!c) { continue; }
      var k = classOf(c[at], breaks);
      if (k >= 0) { rows.push({p: rings[i].p, f: rampColour(mode, k, breaks.length).concat([215])}); }
    }
    W.baseRows = rings.length;
    W.gridRows = rows.length;
    // The hexagon layer exists only in its view: an idle layer still costs its set-up.
    var template = mode === "heat" ? base : Object.assign({}, base, {
      layers: base.layers.filter(function (l) { return l.id !== "heat"; })});
    return withLayers(template, view, {
      "grids": {data: rows},
      "heat": {data: mode === "heat" ? decodeHeat(heat) : [], visible: mode === "heat", radius: 1400},
      "streets": {data: segments(base, "streets")},
      "district-lines": {data: segments(base, "district-lines")}
    });
  }

  // ---- merged state: the last snapshot plus what came live since --------------------------------
  function merged(agg) {
    var live = W.live;
    var byId = new Map();
    (agg ? agg.newest : []).forEach(function (c) { byId.set(c.id, c); });
    // Lists only: the counts are the server's (docs/figures.md), shown as the next snapshot brings them.
    live.cases.forEach(function (c, id) {
      var have = byId.get(id);
      if (!have || (c.version || 0) >= (have.version || 0)) { byId.set(id, c); }
    });
    var newest = Array.from(byId.values()).filter(function (c) { return c.state !== "merged"; });
    newest.sort(function (a, b) {
      return a.reported_at < b.reported_at ? 1 : a.reported_at > b.reported_at ? -1 : b.id - a.id;
    });
    // Emergencies: the snapshot's open ones, updated and extended by the live stream.
    var em = new Map();
    (agg ? agg.emergencies : []).forEach(function (c) { em.set(c.id, c); });
    live.cases.forEach(function (c, id) {
      if (c.kind !== "emergency") { return; }
      var have = em.get(id);
      if (have && (have.version || 0) > (c.version || 0)) { return; }
      if (isOpen(c.state)) { em.set(id, c); } else { em.delete(id); }
    });
    var emergencies = Array.from(em.values()).sort(function (a, b) {
      return ((a.severity || 9) - (b.severity || 9)) || (a.reported_at < b.reported_at ? 1 : -1);
    });
    return {newest: newest.slice(0, 12), emergencies: emergencies};
  }

  // The open alarms: the snapshot's, updated by the live stream (a cleared one leaves), most severe then newest first.
  function mergedAlarms(agg) {
    var byId = new Map();
    ((agg && agg.alarms && agg.alarms.items) || []).forEach(function (a) { byId.set(a.id, a); });
    W.live.alarms.forEach(function (a, id) {
      var have = byId.get(id);
      if (!have || (a.updated_at || "") >= (have.updated_at || "")) { byId.set(id, a); }
    });
    var open = Array.from(byId.values()).filter(function (a) { return a.status !== "cleared"; });
    open.sort(function (a, b) {
      var d = SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity);
      return d !== 0 ? d : (b.started_at || "").localeCompare(a.started_at || "") || b.id - a.id;
    });
    return open;
  }

  function getMerged(agg) {
    if (!W.mergedState || W.mergedFor !== agg || W.mergedRev !== W.live.rev) {
      W.mergedState = merged(agg);
      W.mergedState.alarms = mergedAlarms(agg);
      W.mergedFor = agg;
      W.mergedRev = W.live.rev;
    }
    return W.mergedState;
  }

  // ---- the overlay deck: today's cases, pulses for new ones, emergencies ------------------------
  function overlaySpec(agg, cfg, mode) {
    var view = W.lastView = mapView(agg, cfg);
    var s = scale(), now = performance.now(), wall = Date.now();
    var pts = new Map();
    (agg ? agg.points : []).forEach(function (p) {
      pts.set(p[0], {p: [p[1], p[2]], kind: cfg.kinds[p[3]] || "event", open: (p[4] & 1) === 1});
    });
    var day = agg ? agg.day : null;
    W.live.cases.forEach(function (c, id) {
      if (!c.reported_at || c.reported_at.slice(0, 10) !== day || c.state === "merged") { return; }
      pts.set(id, {p: [c.lon, c.lat], kind: c.kind, open: isOpen(c.state)});
    });
    var today = [], fresh = [];
    pts.forEach(function (v, id) {
      var col = KIND_COLOURS[v.kind] || KIND_COLOURS.event;
      var made = W.live.created.get(id);
      if (made && wall - made.at < FRESH_MS) {
        fresh.push({id: id, p: v.p, c: col.concat([255]), r: 7 * s});
      } else if (mode !== "devices") {  // the devices' view leaves the map to the fleet
        today.push({id: id, p: v.p, c: col.concat([v.open ? 215 : 90]), r: (v.open ? 3.6 : 2.6) * s});
      }
    });
    var pulse = [];
    W.pulses.forEach(function (pl, id) {
      for (var i = 0; i < PULSE_RINGS; i++) {
        var t = (now - pl.start - i * PULSE_GAP_MS) / PULSE_MS;
        if (t < 0 || t > 1) { continue; }
        var col = (pl.c || KIND_COLOURS[pl.kind] || [255, 255, 255]).concat([Math.round(255 * (1 - t))]);
        pulse.push({id: id, p: pl.p, c: col, r: (8 + 52 * t) * s, w: (4 - 2.5 * t) * s});
      }
    });
    var m = getMerged(agg);
    var halo = [], marks = [];
    m.emergencies.forEach(function (c) {
      var sev = c.severity || 4;
      halo.push({id: c.id, p: [c.lon, c.lat], r: (sev <= 2 ? 30 : 22) * s, c: [255, 40, 40, sev <= 2 ? 110 : 80]});
      marks.push({id: c.id, p: [c.lon, c.lat], r: (sev <= 2 ? 11 : 9) * s});
    });
    // Devices: in their own view the fleet by street and the offline ones; the open alarms in every view.
    var clusters = [], offline = [], alarmHalo = [], alarmMarks = [];
    var dv = agg && agg.devices;
    if (mode === "devices" && dv) {
      (dv.clusters || []).forEach(function (c) {
        clusters.push({p: [c[0], c[1]], c: FLEET_COLOUR.concat([c[3] > 0 ? 120 : 95]), r: (2.2 + 0.55 * Math.sqrt(c[2])) * s});
      });
      (dv.offline || []).forEach(function (p) { offline.push({p: p, c: OFFLINE_COLOUR.concat([200]), r: 2.2 * s}); });
    }
    m.alarms.forEach(function (a) {
      var col = ALARM_COLOURS[a.severity] || ALARM_COLOURS.warning;
      var big = a.severity === "critical" || a.severity === "major";
      alarmHalo.push({id: a.id, p: [a.lon, a.lat], r: (big ? 12 : 9.5) * s, w: (big ? 2.5 : 1.5) * s,
                      c: col.concat([big ? 230 : 160])});
      alarmMarks.push({id: a.id, p: [a.lon, a.lat], r: (big ? 6.5 : 5) * s,
                       c: col.concat([a.status === "acknowledged" ? 170 : 255])});
    });
    var warnRings = [];
    ((agg && agg.warnings && agg.warnings.marks) || []).forEach(function (w) {
      warnRings.push({p: [w[0], w[1]], c: (w[2] === 1 ? WARN_SPOT : WARN_GRID).concat([235]), r: 11 * s, w: 3 * s});
    });
    W.lastOverlay = {today: today.length, warnings: warnRings.length, fresh: fresh.map(function (f) { return f.id; }),
                     pulse: pulse.length, emergencies: marks.map(function (e) { return e.id; }),
                     alarms: alarmMarks.map(function (a) { return a.id; }), clusters: clusters.length,
                     offline: offline.length};
    return withLayers(cfg.overlay, view, {
      "dev-clusters": {data: clusters},
      "dev-offline": {data: offline},
      "warn-ring": {data: warnRings},
      "alarm-halo": {data: alarmHalo},
      "alarm": {data: alarmMarks},
      "today": {data: today},
      "fresh": {data: fresh},
      "pulse": {data: pulse},
      "emergency-halo": {data: halo},
      "emergency": {data: marks}
    });
  }

  // Emergency labels as HTML over the map (crisp at any size, no font atlas to build).
  function emergencyLabels(agg, cfg) {
    var m = getMerged(agg), out = [], sig = [], placed = [];
    var rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
    var lh = 1.75 * rem, gap = 0.25 * rem;
    // Most severe first; a label that would cover another moves up a line (at most three), else waits.
    m.emergencies.slice(0, 12).forEach(function (c) {
      var xy = W.project(c.lon, c.lat);
      if (!xy) { return; }
      var text = (cfg.severity_labels[String(c.severity || 4)] || "") + " " + c.category.name;
      var w = (text.length * 1.15 + 1.2) * rem, x0 = xy[0] - w / 2, top = null;
      for (var k = 0; k < 4 && top === null; k++) {
        var y1 = xy[1] - 1.2 * rem - k * (lh + gap), y0 = y1 - lh;
        var clash = placed.some(function (r) { return x0 < r[2] && r[0] < x0 + w && y0 < r[3] && r[1] < y1; });
        if (!clash) { top = y1; placed.push([x0, y0, x0 + w, y1]); }
      }
      if (top === null) { return; }
      sig.push(c.id + ":" + Math.round(xy[0]) + ":" + Math.round(top) + ":" + text);
      out.push(h("Div", {className: "wall-em-label is-sev" + (c.severity || 4),
                         style: {left: Math.round(xy[0]) + "px", top: Math.round(top) + "px"}}, text));
    });
    var key = sig.join("|");
    if (key !== W.labelKey) {
      W.labelKey = key;
      paint("wall-em-labels", out);
    }
  }

  // ---- panels ----------------------------------------------------------------------------------------
  function trendBars(trend) {
    if (!trend) { return []; }
    var today = trend.today;
    var max = 1;
    for (var i = 0; i < 24; i++) { max = Math.max(max, today[i] || 0, trend.usual[i] || 0); }
    var bars = [];
    for (var hr = 0; hr < 24; hr++) {
      var past = hr <= trend.hour;
      var hT = past ? Math.round(100 * (today[hr] || 0) / max) : 0;
      var hU = Math.round(100 * (trend.usual[hr] || 0) / max);
      bars.push(h("Div", {className: "wall-bar" + (hr === trend.hour ? " is-now" : "")}, [
        h("Div", {className: "wall-bar-usual", style: {bottom: hU + "%"}}),
        h("Div", {className: "wall-bar-today", style: {height: hT + "%"}}),
        h("Div", {className: "wall-bar-hour"}, hr % 3 === 0 ? String(hr) : "")
      ]));
    }
    return bars;
  }

  function tickerItem(c) {
    var street = nameAt(c.chain, 3), district = nameAt(c.chain, 2);
    var kind = c.kind || (c.category && c.category.kind) || "event";
    var made = W.live.created.get(c.id);
    var isNew = made && Date.now() - made.at < 15000;
    var sev = c.severity ? (W.cfg.severity_labels[String(c.severity)] || "") : "";
    return h("Div", {className: "wall-tick is-" + kind + (isNew ? " is-new" : ""), id: "wall-tick-" + c.id}, [
      h("Span", {className: "wall-tick-time"}, hhmm(c.reported_at)),
      h("Span", {className: "wall-tick-kind"}, sev || W.cfg.kind_labels[kind] || ""),
      h("Div", {className: "wall-tick-main"}, [
        h("Div", {className: "wall-tick-cat"}, (c.category && c.category.name) || ""),
        h("Div", {className: "wall-tick-where"}, district + (street ? " · " + street : ""))
      ]),
      h("Span", {className: "wall-tick-state" + (c.overdue ? " is-overdue" : "")}, c.overdue ? "超期" : (c.state_label || ""))
    ]);
  }

  // The alarm ticker: the open alarms counted by severity (in the card's title), then the most severe and newest,
  // one line each.
  function alarmCounts(agg, alarms) {
    var info = (agg && agg.alarms) || {}, labels = info.severity_labels || {};
    var counts = {};
    SEVERITIES.forEach(function (sv) { counts[sv] = 0; });
    alarms.forEach(function (a) { counts[a.severity] = (counts[a.severity] || 0) + 1; });
    // the merged list counts when the snapshot held every open alarm; else the server's counts (the list is cut)
    var complete = (info.total || 0) <= (info.items || []).length;
    return SEVERITIES.map(function (sv) {
      var n = complete ? counts[sv] : ((info.by_severity || {})[sv] || 0);
      return h("Span", {className: "wall-al-count is-" + sv + (n ? "" : " is-zero")}, [h("Span", {}, labels[sv] || sv), h("B", {}, fmtInt(n))]);
    });
  }

  function alarmTicker(alarms) {
    var now = Date.now();
    var items = alarms.slice(0, TICKER_ALARMS).map(function (a) {
      var made = W.live.alarms.get(a.id), isNew = made && made._new && now - made._at < 15000;
      return h("Div", {className: "wall-al is-" + a.severity + (isNew ? " is-new" : ""), id: "wall-al-" + a.id}, [
        h("Span", {className: "wall-al-time"}, hhmm(a.started_at)),
        h("Span", {className: "wall-al-sev"}, a.severity_label || ""),
        h("Span", {className: "wall-al-what"}, a.rule_name),
        h("Span", {className: "wall-al-where"}, a.district + (a.street ? " " + a.street : "")),
        h("Span", {className: "wall-al-state" + (a.case_id ? " is-case" : "")},
          a.case_id ? "已立案" : (a.status === "acknowledged" ? "已确认" : "未确认"))]);
    });
    if (!items.length) { items = [h("Div", {className: "wall-empty-note"}, "当前无物联告警")]; }
    return items;
  }

  // The open early warnings (figures/wall.py _warnings): newest first, kind, place, category, observed vs expected.
  // None from the server: the app runs without the warning service, and the card says so.
  function warningCard(info) {
    if (!info) { return [null, [h("Div", {className: "wall-empty-note"}, "预警服务未启用")]]; }
    var now = Date.now(), first = !W.warnSeen;
    W.warnSeen = W.warnSeen || {};
    var items = (info.items || []).map(function (w) {
      if (!W.warnSeen[w.id]) { W.warnSeen[w.id] = first ? 1 : now; }  // the first snapshot's are not new
      var made = now - W.warnSeen[w.id] < 15000;
      return h("Div", {className: "wall-warn is-" + w.kind + (made ? " is-new" : ""), id: "wall-warn-" + w.id}, [
        h("Span", {className: "wall-warn-kind"}, w.kind_label),
        h("Span", {className: "wall-warn-main"}, [
          h("Span", {className: "wall-warn-where"}, w.spot),
          h("Span", {className: "wall-warn-when"}, w.district + " · " + w.category + " · " + w.window)]),
        h("Span", {className: "wall-warn-obs"}, [h("B", {}, fmtInt(w.observed)),
          (w.expected === null || w.expected === undefined) ? " 件" : " / 预期 " + Number(w.expected).toFixed(0)])]);
    });
    if (!items.length) { items = [h("Div", {className: "wall-empty-note"}, "当前无预警")]; }
    var count = info.total ? h("Span", {className: "wall-warn-total"}, "待处理 " + fmtInt(info.total) + " 条") : null;
    return [count, items];
  }

  // The districts ranked by this month's assessment score (综合指标值, figures/assessment_view.py), ties by
  // the on-time rate; a district with nothing to score has no rank and comes last.
  function rankingTable(rows) {
    var head = h("Div", {className: "wall-rank-row is-head"}, [
      h("Span", {className: "wall-rank-no"}, "#"), h("Span", {className: "wall-rank-name"}, "区县"),
      h("Span", {}, "今日受理"), h("Span", {}, "在办"), h("Span", {}, "超期"), h("Span", {}, "按期率"),
      h("Span", {className: "wall-rank-score"}, "综合指标")]);
    return [head].concat((rows || []).map(function (r) {
      var rate = r.on_time_rate === null || r.on_time_rate === undefined ? null : r.on_time_rate;
      var ranked = r.rank !== null && r.rank !== undefined;
      var score = r.score === null || r.score === undefined ? null : r.score;
      return h("Div", {className: "wall-rank-row" + (ranked && r.rank <= 3 ? " is-top" : ""), id: "wall-rank-" + r.code}, [
        h("Span", {className: "wall-rank-no"}, ranked ? String(r.rank) : "—"),
        h("Span", {className: "wall-rank-name"}, r.name),
        h("Span", {}, fmtInt(r.received_today)), h("Span", {}, fmtInt(r.open)),
        h("Span", {className: r.overdue > 0 ? "is-alert" : ""}, fmtInt(r.overdue)),
        h("Span", {className: "wall-rank-rate"}, rate === null ? "—" : fmtRate(rate) + "%"),
        h("Span", {className: "wall-rank-score"}, [
          h("B", {className: "wall-rank-points"}, score === null ? "—" : Number(score).toFixed(1)),
          h("Span", {className: "wall-grade is-" + (r.grade || "none")}, r.grade || "—")])
      ]);
    }));
  }

  function topBars(top) {
    var max = 1;
    (top || []).forEach(function (t) { max = Math.max(max, t.count); });
    if (!top || !top.length) { return [h("Div", {className: "wall-empty-note"}, "今日暂无上报")]; }
    return top.map(function (t) {
      return h("Div", {className: "wall-hbar"}, [
        h("Span", {className: "wall-hbar-label"}, t.name),
        h("Span", {className: "wall-hbar-track"}, h("Span", {className: "wall-hbar-fill", style: {width: Math.round(100 * t.count / max) + "%"}})),
        h("Span", {className: "wall-hbar-value"}, fmtInt(t.count))]);
    });
  }

  function emergencyPanel(list, severity, todayCount) {
    var sevRow = ["1", "2", "3", "4"].map(function (k) {
      var n = (severity || {})[k] || 0;  // the server's count of open emergencies of that level
      return h("Div", {className: "wall-sev is-sev" + k}, [
        h("Div", {className: "wall-sev-value"}, String(n)), h("Div", {className: "wall-sev-label"}, W.cfg.severity_labels[k])]);
    });
    sevRow.push(h("Div", {className: "wall-sev is-today"}, [
      h("Div", {className: "wall-sev-value"}, fmtInt(todayCount)), h("Div", {className: "wall-sev-label"}, "今日新发")]));
    var responses = new Map(((W.agg && W.agg.responses) || []).map(function (r) { return [r.case_id, r]; }));
    var items = list.slice(0, 4).map(function (c) {
      // a commanded emergency says its response, or its owed report when that is late
      var r = responses.get(c.id), owed = r && r.next_report, late = owed && Date.parse(owed.due_at) < Date.now();
      var when = late ? owed.kind_label + "超时" : r ? r.response_name : hhmm(c.reported_at);
      return h("Div", {className: "wall-em-item is-sev" + (c.severity || 4)}, [
        h("Span", {className: "wall-em-sev"}, W.cfg.severity_labels[String(c.severity || 4)]),
        h("Span", {className: "wall-em-cat"}, c.category.name),
        h("Span", {className: "wall-em-where"}, nameAt(c.chain, 2) + " " + nameAt(c.chain, 3)),
        h("Span", {className: "wall-em-time" + (late ? " is-late" : r ? " is-resp" : "")}, when)]);
    });
    if (!items.length) { items = [h("Div", {className: "wall-empty-note"}, "当前无在办应急事件")]; }
    return [sevRow, items];
  }

  // The four theme panels of the city's vital signs (snapshot "vital_signs", figures/vital_signs.py): each
  // indicator's latest value with its unit, source and time, the change since the same time yesterday and a
  // 24-hour sparkline; a value older than its freshness is marked 数据滞后; a panel with no reading says so.
  function sparkBars(spark) {
    var vals = (spark || []).filter(function (v) { return v !== null && v !== undefined; });
    if (vals.length < 2) { return null; }
    var lo = Math.min.apply(null, vals), hi = Math.max.apply(null, vals), span = hi - lo || 1;
    return h("Div", {className: "wall-spark-box"}, [
      h("Div", {className: "wall-spark"}, spark.map(function (v) {
        return h("Span", {className: v === null || v === undefined ? "is-gap" : "",
                          style: {height: (v === null || v === undefined) ? "0" : Math.round(12 + 88 * (v - lo) / span) + "%"}});
      })),
      h("Div", {className: "wall-spark-cap"}, "近24小时")]);
  }
  function vitalPanel(p) {
    if (!p || p.empty) {
      return [h("Div", {className: "wall-empty-note wall-vital-none"}, "暂无数据：本专题的体征指标尚未接入")];
    }
    return p.items.map(function (i) {
      if (i.value === null || i.value === undefined) {
        return h("Div", {className: "wall-vital is-none"}, [
          h("Div", {className: "wall-vital-name"}, i.name), h("Div", {className: "wall-vital-meta"}, "暂无数据")]);
      }
      var up = i.delta > 0 ? " is-up" : (i.delta < 0 ? " is-down" : "");
      return h("Div", {className: "wall-vital" + (i.stale ? " is-stale" : "")}, [
        h("Div", {className: "wall-vital-main"}, [
          h("Div", {className: "wall-vital-name"}, i.name),
          h("Div", {className: "wall-vital-line"}, [
            h("Span", {className: "wall-vital-value"}, i.text),
            i.unit ? h("Span", {className: "wall-vital-unit"}, i.unit) : null,
            i.delta_text ? h("Span", {className: "wall-vital-delta" + up}, i.delta_text) : null,
            i.stale ? h("Span", {className: "wall-vital-stale"}, "数据滞后") : null]),
          h("Div", {className: "wall-vital-meta"}, "来源：" + i.source_label + " · " + i.when)]),
        sparkBars(i.spark)]);
    });
  }
  function paintVitals(vitals) {
    Object.keys(vitals || {}).forEach(function (key) {
      var p = vitals[key];
      paint("wall-vital-" + key, vitalPanel(p));
      paint("wall-vital-badge-" + key, p.demo ? "演示数据" : null, "wall-demo-badge" + (p.demo ? "" : " is-off"));
      paint("wall-vital-when-" + key, p.empty ? null : (p.stale ? "部分数据滞后" : "实时"),
            "wall-vital-when" + (p.stale ? " is-stale" : ""));
    });
  }

  function alertBanner(list) {
    var now = Date.now();
    var hot = list.filter(function (c) {
      var made = W.live.created.get(c.id);
      return (c.severity && c.severity <= 2) || (made && now - made.at < 10 * 60000);
    });
    if (!hot.length) { return [null, "wall-alert"]; }
    var c = hot[0];
    var more = hot.length > 1 ? "（另有 " + (hot.length - 1) + " 起）" : "";
    return [[h("Span", {className: "wall-alert-icon"}, "⚠"),
             (W.cfg.severity_labels[String(c.severity || 4)] || "") + " " + c.category.name + " · " +
             nameAt(c.chain, 2) + " " + nameAt(c.chain, 3) + " · " + hhmm(c.reported_at) + more],
            "wall-alert is-on"];
  }

  W.render = function (agg, _live, cfg) {
    if (!agg || !cfg) { return {}; }
    W.cfg = W.cfg || cfg;
    if (agg !== W.seenAgg) {
      W.seenAgg = agg;
      W.agg = agg;
      W.lastRefreshAt = Date.now();
      pruneLive(agg);
    }
    var m = getMerged(agg);
    var t = agg.today;
    var r = {};
    r["wall-fig-received.children"] = fmtInt(t.received);
    r["wall-fig-accepted.children"] = fmtInt(t.accepted);
    r["wall-fig-closed.children"] = fmtInt(t.closed);
    r["wall-fig-open.children"] = fmtInt(t.open);
    r["wall-fig-overdue.children"] = fmtInt(t.overdue);
    r["wall-fig-emergencies_open.children"] = fmtInt(t.emergencies_open);
    r["wall-fig-closure.children"] = fmtRate(agg.month.closure_rate);
    r["wall-fig-ontime.children"] = fmtRate(agg.month.on_time_rate);
    paint("wall-trend", trendBars(agg.trend));
    var soFar = agg.trend.today_so_far, usual = agg.trend.usual_so_far;
    var diff = usual > 0 ? Math.round(100 * (soFar - usual) / usual) : null;
    r["wall-trend-caption.children"] = "今日累计 " + fmtInt(soFar) + " 件，常态 " + fmtInt(Math.round(usual)) + " 件" +
      (diff === null ? "" : "（" + (diff >= 0 ? "+" : "") + diff + "%）");
    paint("wall-ranking", rankingTable(agg.ranking));
    paint("wall-alarm-counts", alarmCounts(agg, m.alarms));
    paint("wall-alarms", alarmTicker(m.alarms));
    var warn = warningCard(agg.warnings);
    paint("wall-warn-count", warn[0]);
    paint("wall-warnings", warn[1]);
    paint("wall-ticker", m.newest.length ? m.newest.map(tickerItem) : [h("Div", {className: "wall-empty-note"}, "今日暂无上报")]);
    r["wall-city-received.children"] = fmtInt(agg.month.received);
    r["wall-city-accepted.children"] = fmtInt(agg.month.accepted);
    r["wall-city-closure.children"] = fmtRate(agg.month.closure_rate);
    r["wall-city-ontime.children"] = fmtRate(agg.month.on_time_rate);
    r["wall-city-rework.children"] = agg.month.rework_rate === null ? "—" : Number(agg.month.rework_rate).toFixed(2);
    r["wall-city-hours.children"] = fmtRate(agg.month.mean_handling_hours);
    paint("wall-city-top", topBars(agg.top_categories));
    var em = emergencyPanel(m.emergencies, agg.emergency_severity, t.emergencies_today);
    paint("wall-em-severity", em[0]);
    paint("wall-em-list", em[1]);
    paintVitals(agg.vital_signs);
    var banner = alertBanner(m.emergencies);
    paint("wall-alert", banner[0], banner[1]);
    W.rendered = true;
    return r;
  };

  // Live entries that the snapshot surely contains (received well before it) are dropped.
  function pruneLive(agg) {
    var cut = Date.now() - 120000, live = W.live;
    live.cases.forEach(function (c, id) {
      var made = live.created.get(id);
      var at = c._at || 0;
      if (at < cut && id <= agg.max_case_id && !W.pulses.has(id)) {
        live.cases.delete(id);
        if (made && Date.now() - made.at > FRESH_MS) { live.created.delete(id); }
      }
    });
    live.created.forEach(function (m, id) { if (Date.now() - m.at > DAY_MS) { live.created.delete(id); } });
    live.alarms.forEach(function (a, id) { if ((a._at || 0) < cut) { live.alarms.delete(id); } });
  }

  // ---- the live stream -------------------------------------------------------------------------------
  function pushLive() {
    if (W.pushTimer) { return; }
    W.pushTimer = setTimeout(function () {
      W.pushTimer = null;
      W.live.rev += 1;
      setProps("wall-live", {data: {rev: W.live.rev, at: Date.now()}});
    }, 40);
  }

  // Each seq arrives here once (live_client.js drops repeats).
  function onCaseEvent(msg) {
    if (!msg || typeof msg.seq !== "number" || !msg.case) { return; }
    var live = W.live;
    live.maxSeq = Math.max(live.maxSeq || 0, msg.seq);
    var c = msg.case, have = live.cases.get(c.id);
    W.lastMsgAt = Date.now();
    if (!have || (c.version || 0) >= (have.version || 0)) {
      c._at = Date.now();
      live.cases.set(c.id, c);
    }
    if (msg.type === "created" && !live.created.has(c.id)) {
      var rep = c.reported_at || "";
      live.created.set(c.id, {day: rep.slice(0, 10), hour: parseInt(rep.slice(11, 13), 10) || 0, at: Date.now()});
      var age = Date.now() - Date.parse(rep);
      if (c.state !== "merged" && age < 10 * 60000) {
        W.pulses.set(c.id, {p: [c.lon, c.lat], kind: c.kind, start: performance.now()});
        startAnim();
      }
    }
    refreshFiguresSoon();  // a new or moved case changes figures only the server counts
    pushLive();
  }

  // An alarm raised, updated, acknowledged, cleared or given its case (no seq: alarms have no outbox; the next
  // snapshot carries the open ones again after an interruption).
  function onAlarmEvent(msg) {
    var a = msg && msg.alarm;
    if (!a || typeof a.id !== "number") { return; }
    var have = W.live.alarms.get(a.id);
    if (have && (a.updated_at || "") < (have.updated_at || "")) { return; }
    var known = have || (W.agg && W.agg.alarms && (W.agg.alarms.items || []).some(function (x) { return x.id === a.id; }));
    a._at = Date.now();
    a._new = !known || (have && have._new);
    W.live.alarms.set(a.id, a);
    W.lastMsgAt = Date.now();
    W.lastAlarmAt = Date.now();
    W.lastAlarmId = a.id;
    if (!known && a.status === "active") {
      W.pulses.set("a" + a.id, {p: [a.lon, a.lat], c: ALARM_COLOURS[a.severity] || ALARM_COLOURS.warning,
                                start: performance.now()});
      startAnim();
    }
    pushLive();
  }

  // A warning stored (warning_event, foresight/warnings.py): the warnings card and the map's rings come with the
  // snapshot, which is read again at once (a warning is rare: an hourly run stores a handful).
  function onWarningEvent(msg) {
    if (!msg || !msg.warning) { return; }
    W.lastMsgAt = Date.now();
    W.lastWarningId = msg.warning.id;
    setProps("wall-resync", {data: Date.now()});
  }

  // A new case or one moving on (立案, 结案, …) changes figures only the server counts (received, open,
  // overdue, the rates): read the snapshot again, once per burst and at most every FIGURES_EVERY_MS.
  // It comes from indexes and rollups (tens of ms with a million cases), not from a scan.
  var FIGURES_EVERY_MS = 5000;
  function refreshFiguresSoon() {
    if (W.figuresTimer) { return; }
    var wait = Math.max(800, FIGURES_EVERY_MS - (Date.now() - (W.figuresAt || 0)));
    W.figuresTimer = setTimeout(function () {
      W.figuresTimer = null;
      W.figuresAt = Date.now();
      setProps("wall-resync", {data: Date.now()});
    }, wait);
  }

  function startAnim() {
    if (W.animOn) { return; }
    W.animOn = true;
    var tick = function () {
      var now = performance.now();
      W.pulses.forEach(function (pl, id) {
        if (now - pl.start > PULSE_MS + (PULSE_RINGS - 1) * PULSE_GAP_MS) { W.pulses.delete(id); }
      });
      setProps("wall-anim", {data: now});
      if (W.pulses.size === 0) { W.animOn = false; return; }
      setTimeout(tick, 66);
    };
    tick();
  }

  // The live stream (assets/live_client.js): auth {token} for a display opened with ?token=,
  // the signed-in session otherwise.
  function connect() {
    var cfg = W.cfg;
    if (!cfg || !cfg.live || !window.uccLive || W.conn) { return; }
    W.conn = window.uccLive.connect({
      token: cfg.token || null,
      // nothing seen yet: replay from the outbox head the snapshot was read at
      since: function () { return W.agg ? W.agg.head_seq : null; },
      onEvent: onCaseEvent,
      onAlarm: onAlarmEvent,
      onWarning: onWarningEvent,
      onState: function (state, conn) {
        W.connected = state === "live";
        W.connectError = conn.error;
        // After an interruption the figures are read again too (the replay brings only case events).
        if (state === "live" && conn.connects > 1) { setProps("wall-resync", {data: Date.now()}); }
      },
      onResync: function (ack, conn) {
        W.lastResync = ack;
        W.live.maxSeq = conn.maxSeq;
        if (ack && ack.ok && ack.complete !== false) {
          W.lastMsgAt = Date.now();
        } else {
          // too far behind for a replay, or refused: reload the figures (then follow from the head)
          setProps("wall-resync", {data: Date.now()});
        }
        pushLive();
      }
    });
  }

  // A wall runs for weeks: once a night (04:00 in the city) the page reloads, if the server answers.
  function nightlyReload() {
    var now = new Date();
    var local = new Date(now.toLocaleString("en-US", {timeZone: "Asia/Shanghai"}));
    var next = new Date(local);
    next.setHours(4, 0, 0, 0);
    if (next <= local) { next.setDate(next.getDate() + 1); }
    setTimeout(function () {
      fetch(window.location.href, {cache: "no-store"}).then(function (r) {
        if (r.ok) { window.location.reload(); } else { nightlyReload(); }
      }).catch(function () { setTimeout(nightlyReload, 60000); });
    }, next - local);
  }

  // ---- readiness (tests and the bench) ------------------------------------------------------------
  W.canvasColours = function (id) {
    var c = document.getElementById(id || "wall-map");
    if (!c || !c.width) { return 0; }
    var probe = document.createElement("canvas");
    probe.width = 96; probe.height = 54;
    var ctx = probe.getContext("2d", {willReadFrequently: true});
    try { ctx.drawImage(c, 0, 0, probe.width, probe.height); } catch (e) { return 0; }
    var px = ctx.getImageData(0, 0, probe.width, probe.height).data, seen = {}, n = 0;
    for (var i = 0; i < px.length; i += 4) {
      var key = (px[i] >> 3) + "," + (px[i + 1] >> 3) + "," + (px[i + 2] >> 3);
      if (!seen[key]) { seen[key] = 1; n += 1; }
    }
    return n;
  };
  // Cheap checks first: reading the canvas back is a GPU readback (costly on software WebGL).
  W.isReady = function () {
    if (!W.rendered || !W.baseRows) { return false; }
    var figs = document.querySelectorAll(".wall-fig-value");
    for (var i = 0; i < figs.length; i++) { if (figs[i].textContent === "—" || figs[i].textContent === "") { return false; } }
    if (!document.querySelector("#wall-ranking .wall-rank-row") || !document.querySelector("#wall-trend .wall-bar")) { return false; }
    if (!document.querySelector("#wall-ticker > *")) { return false; }
    var now = performance.now();
    if (W.lastProbe && now - W.lastProbe < 100) { return false; }
    W.lastProbe = now;
    return W.canvasColours("wall-map") > 20;
  };

  // ---- Dash entry points ------------------------------------------------------------------------------
  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    wall: {
      start: function (cfg, agg) {
        if (!cfg) { return nu(); }
        W.cfg = cfg;
        if (agg && !W.agg) { W.agg = agg; }
        if (!W.started) {
          W.started = true;
          connect();
          setTimeout(nightlyReload, 10000);  // not in the first drawing's way
          var resizeTimer = null;
          window.addEventListener("resize", function () {
            clearTimeout(resizeTimer);
            resizeTimer = setTimeout(function () { setProps("wall-viewport", {data: {w: window.innerWidth, h: window.innerHeight}}); }, 200);
          });
        }
        return Date.now();
      },
      base: function (agg, mode, _viewport, heat, cfg) {
        if (!cfg) { return [nu(), nu(), nu(), nu()]; }
        W.cfg = W.cfg || cfg;
        if (!baseReady(cfg)) { return [nu(), nu(), nu(), nu()]; }  // redrawn when it arrives
        mode = mode || "open";
        var spec = baseSpec(agg, heat, mode, cfg);  // sets W.lastView, which the labels use
        return [spec, legendFor(mode, agg, cfg), cfg.mode_names[mode] || "", areaLabels(W.mapBase.base)];
      },
      // The hexagon points came (first showing of that view, or the 5-minute refresh): redraw the
      // base through the viewport store, which `base` listens to.
      heat_arrived: function (heat) {
        if (heat && W.cfg) { redrawBase(); }
        return Date.now();
      },
      overlay: function (agg, _live, _anim, _viewport, mode, cfg) {
        if (!cfg || !agg) { return nu(); }
        W.cfg = W.cfg || cfg;
        emergencyLabels(agg, cfg);
        var t = takeoverOf(agg);
        if ((t && t.case_id) !== (W.takeover && W.takeover.case_id)) { W.takeover = t; redrawBase(); }
        W.takeover = t;
        paintTakeover();
        return overlaySpec(agg, cfg, mode || "open");
      },
      kiosk: function (n, cfg) {
        var panels = cfg.panels, idx = 0;
        if (cfg.pinned) { idx = panels.indexOf(cfg.pinned); } else if (cfg.kiosk && n) { idx = n % panels.length; }
        var mode = cfg.pinned_mode || (cfg.kiosk && n ? cfg.modes[Math.floor(n / 2) % cfg.modes.length] : cfg.modes[0]);
        if (W.kioskIdx === idx && W.kioskMode === mode) {
          return panels.map(nu).concat([nu(), nu()]);
        }
        var modeOut = W.kioskMode === mode ? nu() : mode;
        W.kioskIdx = idx;
        W.kioskMode = mode;
        var classes = panels.map(function (_k, i) { return "wall-theme" + (i === idx ? " is-active" : ""); });
        var tabs = panels.map(function (k, i) {
          return h("Span", {className: "wall-tab" + (i === idx ? " is-active" : "")}, cfg.panel_names[k]);
        });
        return classes.concat([tabs, modeOut]);
      },
      clock: function (_n, cfg) {
        if (W.takeover) { paintTakeover(); }
        var now = new Date();
        // Formatters made once (toLocale*String builds one per call: ~10 ms the first time, every second).
        W.fmt = W.fmt || {
          time: new Intl.DateTimeFormat("zh-CN", {timeZone: "Asia/Shanghai", hour12: false, hour: "numeric",
                                                  minute: "numeric", second: "numeric"}),
          date: new Intl.DateTimeFormat("zh-CN", {timeZone: "Asia/Shanghai", year: "numeric", month: "long",
                                                  day: "numeric", weekday: "long"})
        };
        var time = W.fmt.time.format(now);
        var date = W.fmt.date.format(now);
        var conn, connCls;
        if (!cfg.live) {
          conn = cfg.token_error ? "⚠ " + cfg.token_error + " · 定时刷新" : "未接入实时推送 · 每15秒刷新";
          connCls = "wall-conn is-off";
        } else if (W.connected) {
          conn = "● 实时推送已连接";
          connCls = "wall-conn is-on";
        } else if (W.connectError) {
          conn = "⚠ 实时推送被拒绝：" + W.connectError;
          connCls = "wall-conn is-error";
        } else {
          conn = "○ 实时推送中断 · 正在重连";
          connCls = "wall-conn is-error";
        }
        var fresh = Math.max(W.lastRefreshAt || 0, W.lastMsgAt || 0);
        var stale = "", staleCls = "wall-stale";
        if (fresh && Date.now() - fresh > STALE_AFTER_MS) {
          stale = "⚠ 数据更新中断 " + Math.floor((Date.now() - fresh) / 60000) + " 分钟";
          staleCls = "wall-stale is-on";
        }
        return [time, date, conn, connCls, stale, staleCls];
      }
    }
  });
})();
