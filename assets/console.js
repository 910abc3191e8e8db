// The console's browser half (/console): the live stream, the grid's refreshes, the maps, the keyboard.
//
// Live: window.uccLive (assets/live_client.js) with the session (no token), resync from the outbox head
// read when the page was built. Any case event re-reads the grid's loaded blocks (debounced: a burst
// costs one refresh, at most one a second); an event about the case open in the detail, newer than the
// version shown, raises the "someone else changed it" banner instead of replacing what the officer reads.
// Every function is a no-op off the page (this file is served to every page).
(function () {
  "use strict";
  var C = window.uccConsole = window.uccConsole || {};
  var SETTLE_MS = 250, MIN_GAP_MS = 1000, SUP_GAP_MS = 5000;
  var NARROW_HIDES = ["kind_label", "source", "description"];  // columns the queue drops beside the panel
  C.events = C.events || 0;
  C.refreshes = C.refreshes || 0;
  C.lastRefreshAt = C.lastRefreshAt || 0;

  function nu() { return window.dash_clientside.no_update; }
  function onPage() { return !!document.getElementById("cs-root"); }
  function setProps(id, props) {
    if (window.dash_clientside && window.dash_clientside.set_props) { window.dash_clientside.set_props(id, props); }
  }
  function grid() {
    try { return window.dash_ag_grid && window.dash_ag_grid.getApi("cs-grid"); } catch (e) { return null; }
  }

  // ---- live ------------------------------------------------------------------------------------------
  function showState(state, conn) {
    var text = "○ 连接中…", cls = "cs-live", title = "正在连接实时推送";
    if (state === "live") {
      text = "● 实时"; cls = "cs-live is-on"; title = "实时推送已连接：新案件和状态变化自动出现";
    } else if (state === "down") {
      text = "⚠ 连接中断"; cls = "cs-live is-down";
      title = conn && conn.error ? "实时推送被拒绝：" + conn.error : "实时推送中断，正在重连";
    }
    setProps("cs-live", {children: text, className: cls, title: title});
  }

  function refreshSoon() {
    if (C.timer) { return; }
    var wait = Math.max(SETTLE_MS, C.lastRefreshAt + MIN_GAP_MS - Date.now());
    C.timer = setTimeout(function () {
      C.timer = null;
      if (!onPage()) { stop(); return; }
      var api = grid();
      if (!api) { return; }
      C.lastRefreshAt = Date.now();
      C.refreshes += 1;
      api.refreshInfiniteCache();
    }, wait);
  }

  // The 督办件 count (and the list, while shown) follows the stream: at most once every SUP_GAP_MS.
  function supSoon() {
    if (C.supTimer) { return; }
    var wait = Math.max(SETTLE_MS, (C.lastSupAt || 0) + SUP_GAP_MS - Date.now());
    C.supTimer = setTimeout(function () {
      C.supTimer = null;
      if (!onPage()) { return; }
      C.lastSupAt = Date.now();
      setProps("cs-sup-refresh", {data: C.lastSupAt});
    }, wait);
  }

  function checkOpen(c) {
    var root = document.getElementById("cs-detail-root");
    if (!root || !c || String(c.id) !== root.getAttribute("data-case")) { return; }
    if ((c.version || 0) <= parseInt(root.getAttribute("data-version") || "0", 10)) { return; }
    setProps("cs-stale-text", {children: "该案件已被他人更新为「" + (c.state_label || c.state) + "」（版本 " + c.version +
      "），当前显示的是旧内容。"});
    setProps("cs-stale", {hidden: false});
  }

  function stop() {
    clearTimeout(C.timer);
    clearTimeout(C.supTimer);
    C.timer = null;
    C.supTimer = null;
    if (C.conn) { C.conn.close(); }
    C.conn = null;
  }

  function start(cfg) {
    if (C.conn) { showState(C.conn.state, C.conn); return; }
    if (!window.uccLive) { return; }
    C.head = cfg && cfg.head;
    C.conn = window.uccLive.connect({
      token: null,  // the signed-in session authenticates the socket
      since: function () { return C.head === undefined ? null : C.head; },
      onEvent: function (msg) {
        if (!onPage()) { stop(); return; }
        C.events += 1;
        C.lastEvent = msg;
        refreshSoon();
        if (msg.case && (msg.case.supervised || msg.case.urge_count)) { supSoon(); }
        checkOpen(msg.case);
      },
      onState: function (state, conn) { if (onPage()) { showState(state, conn); } else { stop(); } },
      onResync: function (ack) {
        // Too far behind to replay: the grid reads its blocks again, which is all the page needs.
        if (ack && ack.ok === true && ack.complete === false) { refreshSoon(); }
      }
    });
  }

  // ---- keyboard ---------------------------------------------------------------------------------------
  function typing(el) {
    if (!el) { return false; }
    var tag = (el.tagName || "").toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || el.isContentEditable;
  }
  function inGrid(el) { return !!(el && el.closest && el.closest("#cs-grid")); }
  function clickEl(sel) {
    var el = document.querySelector(sel);
    if (el && !el.disabled && !el.hidden) { el.click(); return true; }
    return false;
  }

  function focusedIndex(api) {
    var f = api.getFocusedCell();
    if (f && f.rowIndex !== null && f.rowIndex !== undefined) { return f.rowIndex; }
    var sel = api.getSelectedNodes ? api.getSelectedNodes() : [];
    return sel.length && sel[0].rowIndex !== null ? sel[0].rowIndex : -1;
  }

  function move(step) {
    var api = grid();
    if (!api) { return; }
    var n = api.getDisplayedRowCount();
    if (!n) { return; }
    var i = Math.max(0, Math.min(n - 1, focusedIndex(api) + step));
    api.ensureIndexVisible(i);
    var col = api.getAllDisplayedColumns()[0];
    api.setFocusedCell(i, col);
    var node = api.getDisplayedRowAtIndex(i);
    if (node && node.data) { node.setSelected(true, true); }
  }

  function openFocused() {
    var api = grid();
    if (!api) { return; }
    var i = focusedIndex(api);
    var node = i >= 0 ? api.getDisplayedRowAtIndex(i) : null;
    if (node && node.data) { setProps("cs-open", {data: {id: node.data.id, t: Date.now()}}); }
  }

  function formOpen() {
    var f = document.getElementById("cs-act-form");
    return !!(f && f.className.indexOf("is-open") >= 0);
  }

  function onKey(ev) {
    if (!onPage() || ev.ctrlKey || ev.metaKey || ev.altKey || ev.isComposing) { return; }
    var t = ev.target, key = ev.key;
    if (key === "Escape") {
      if (formOpen()) { clickEl("#cs-act-cancel"); } else if (!document.getElementById("cs-help").hidden) {
        clickEl("#cs-help-btn");
      } else { clickEl("#cs-close"); }
      if (typing(t)) { t.blur(); }
      ev.preventDefault();
      return;
    }
    if (typing(t)) { return; }
    var grid_has_focus = inGrid(t);
    var done = true;
    if (key === "j" || (key === "ArrowDown" && !grid_has_focus)) { move(1); } else if (key === "k" || (key === "ArrowUp" && !grid_has_focus)) {
      move(-1);
    } else if (key === "Enter") {
      if (formOpen()) { clickEl("#cs-act-go"); } else if (t && t.tagName === "BUTTON") { done = false; } else { openFocused(); }
    } else if (key === "a") { done = clickEl('[data-action="accept"]'); } else if (key === "d") {
      done = clickEl('[data-action="dispatch"]');
    } else if (key === "c") { done = clickEl('[data-action="close"]'); } else if (key === "n") {
      done = clickEl("#cs-new");
    } else if (key === "s") {
      done = clickEl("#cs-sup-btn");
    } else if (key === "/") {
      var s = document.getElementById("cs-search");
      if (s) { s.focus(); s.select(); }
    } else if (key === "?") { clickEl("#cs-help-btn"); } else { done = false; }
    if (done) { ev.preventDefault(); }
  }
  if (!C.keys) {
    C.keys = true;
    document.addEventListener("keydown", onKey);
  }

  // ---- maps ---------------------------------------------------------------------------------------------
  function fit(src, id) {
    if (!src || !src.spec) { return nu(); }
    return window.dash_clientside.ucc.fitDeck(src.bounds, src.spec, id);
  }
  function withPick(spec, lon, lat) {
    var out = Object.assign({}, spec);
    out.layers = (spec.layers || []).map(function (l) {
      return l.id === "pick" ? Object.assign({}, l, {data: (lon === null) ? [] : [{p: [lon, lat]}]}) : l;
    });
    return out;
  }
  function num(v) {
    var x = parseFloat(String(v === null || v === undefined ? "" : v).trim());
    return isFinite(x) ? x : null;
  }

  // ---- Dash entry points ------------------------------------------------------------------------------------
  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    console: {
      start: function (cfg) {
        if (!onPage()) { return nu(); }
        start(cfg || {});
        return Date.now();
      },
      purge: function () {
        var api = grid();
        if (api) { api.purgeInfiniteCache(); }
        return Date.now();
      },
      openRow: function (cell) {
        if (!cell || cell.rowId === undefined || cell.rowId === null) { return nu(); }
        var id = parseInt(cell.rowId, 10);
        return isFinite(id) ? {id: id, t: Date.now()} : nu();
      },
      selectRow: function (shown) {
        var api = grid();
        if (!api || !shown) { return nu(); }
        var node = api.getRowNode(String(shown.id));
        if (node) { node.setSelected(true, true); }
        // the queue shows an older version (our own action, say): re-read it without waiting for the stream
        if (node && node.data && node.data.version !== shown.version) { refreshSoon(); }
        return Date.now();
      },
      columns: function (rootClass) {
        var api = grid();
        if (!api) { return nu(); }
        var narrow = String(rootClass || "").indexOf("has-side") >= 0;
        api.setColumnsVisible(NARROW_HIDES, !narrow);
        api.sizeColumnsToFit();
        return Date.now();
      },
      fitMap: function (src) { return fit(src, "cs-dmap"); },
      intakeMap: function (src, click, lon, lat, current) {
        var trig = (window.dash_clientside.callback_context.triggered || [])[0];
        var prop = trig ? trig.prop_id : "";
        var spec = current && current.layers ? current : null;
        if (prop.indexOf("cs-in-map-src") === 0 || !spec) {
          if (!src || !src.spec) { return [nu(), nu(), nu()]; }
          spec = fit(src, "cs-in-map");
          return [withPick(spec, num(lon), num(lat)), nu(), nu()];
        }
        if (prop.indexOf("cs-in-map.clickInfo") === 0) {
          var c = click && click.coordinate;
          if (!c) { return [nu(), nu(), nu()]; }
          var x = Math.round(c[0] * 1e6) / 1e6, y = Math.round(c[1] * 1e6) / 1e6;
          return [withPick(spec, x, y), x.toFixed(6), y.toFixed(6)];
        }
        var px = num(lon), py = num(lat);
        return [withPick(spec, px === null || py === null ? null : px, py), nu(), nu()];
      }
    }
  });
})();
