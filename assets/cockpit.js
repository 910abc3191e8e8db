// The cockpit's live half (/cockpit): when cases change, the figures are read again, in place.
//
// The stream (assets/live_client.js) only says *that* something changed in the leader's area; the
// figures are aggregates over 30 days, so the page asks the server again (the `refresh` callback in
// callbacks/cockpit.py) by setting the ck-live-tick store — debounced: a burst of events (an intake,
// its acceptance and dispatch a few seconds later) costs one refresh, at most one every 2.5 s.
// #ck-live shows the connection: 实时 / 连接中断. The figures come back in the ck-panel store and
// are drawn by render() below.
(function () {
  "use strict";
  var C = window.uccCockpit = window.uccCockpit || {};
  var SETTLE_MS = 250;    // let the rest of a burst arrive first
  var MIN_GAP_MS = 2500;  // at most one refresh per 2.5 s, however busy the city
  C.events = C.events || 0;
  C.refreshes = C.refreshes || 0;
  C.lastRefreshAt = C.lastRefreshAt || 0;
  C.connected = false;

  function setProps(id, props) {
    if (window.dash_clientside && window.dash_clientside.set_props) { window.dash_clientside.set_props(id, props); }
  }
  // (a dcc.Store renders no element: look for the badge)
  function onPage() { return !!document.getElementById("ck-live"); }

  function hhmmss(ms) {
    return new Date(ms).toLocaleTimeString("zh-CN", {timeZone: "Asia/Shanghai", hour12: false});
  }

  function showState(state, conn) {
    var text, cls, title;
    if (state === "live") {
      text = "● 实时";
      cls = "ck-live is-on";
      title = "实时推送已连接" + (C.lastEventAt ? "，最近更新 " + hhmmss(C.lastEventAt) : "");
    } else if (state === "down") {
      text = "⚠ 连接中断";
      cls = "ck-live is-down";
      title = conn && conn.error ? "实时推送被拒绝：" + conn.error : "实时推送中断，正在重连；数据每5分钟刷新";
    } else {
      text = "○ 连接中…";
      cls = "ck-live is-connecting";
      title = "正在连接实时推送";
    }
    C.stateText = text;
    setProps("ck-live", {children: text, className: cls, title: title});
  }

  // Ask the server for the figures again, at most once per MIN_GAP_MS.
  function schedule() {
    if (C.timer) { return; }
    var wait = Math.max(SETTLE_MS, C.lastRefreshAt + MIN_GAP_MS - Date.now());
    C.timer = setTimeout(function () {
      C.timer = null;
      if (!onPage()) { stop(); return; }
      C.lastRefreshAt = Date.now();
      C.refreshes += 1;
      // seq: the newest event seen, so the server never answers from figures older than it
      setProps("ck-live-tick", {data: {seq: C.conn ? C.conn.maxSeq : null, n: C.refreshes}});
    }, wait);
  }

  // The page was left (Dash's in-page navigation): drop the stream with it.
  function stop() {
    clearTimeout(C.timer);
    C.timer = null;
    if (C.conn) { C.conn.close(); }
    C.conn = null;
    C.connected = false;
  }

  function start(cfg) {
    if (C.conn) {
      // Back on the page with the stream still open: show its state on the new badge.
      showState(C.conn.state, C.conn);
      return;
    }
    if (!cfg || !cfg.live || !window.uccLive) { return; }
    C.conn = window.uccLive.connect({
      token: cfg.token || null,
      // Only "something changed" matters here, not each case: after a (re)connect the figures are
      // read again rather than replaying the missed events one by one.
      replay: false,
      onEvent: function (msg) {
        if (!onPage()) { stop(); return; }
        C.events += 1;
        C.lastEventAt = Date.now();
        C.lastSeq = msg.seq;
        schedule();
      },
      // an early warning stored (foresight/warnings.py): the 仿真预测 view reads its list again
      onWarning: function (msg) {
        if (!onPage()) { stop(); return; }
        C.lastWarning = msg && msg.warning ? msg.warning.id : null;
        setProps("ck-fs-done", {data: Date.now()});
      },
      onState: function (state, conn) {
        if (!onPage()) { stop(); return; }
        C.connected = state === "live";
        showState(state, conn);
      },
      onResync: function (ack) {
        C.lastResync = ack;
        // resync {since: null} answers with the head: refreshing now covers whatever changed
        // between the page's first figures (or the interruption) and this connect
        schedule();
      }
    });
  }

  // Draws the panel's figures (the ck-panel store) unless they were computed for another selection
  // than the page's now: a refresh that left before a click may come back after it.
  function render(data, area, theme, scale) {
    var cc = window.dash_clientside.callback_context;
    var n = cc && cc.outputs_list ? cc.outputs_list.length : 14;
    var nu = window.dash_clientside.no_update, out = [];
    var fresh = data && data.out && data.area === area && data.theme === theme && (data.scale || 1) === (scale || 1);
    for (var i = 0; i < n; i++) {
      out.push(fresh && data.out[i] !== null && data.out[i] !== undefined ? data.out[i] : nu);
    }
    if (fresh) { C.renders = (C.renders || 0) + 1; } else if (data) { C.skipped = (C.skipped || 0) + 1; }
    return out;
  }

  // The 考核评价 view's tables (layouts/cockpit.py: {id, box, head, rows: [{pick, cls, title, cells}], empty};
  // a cell [text, class, title, href]), drawn here into their empty containers: as Dash components their
  // cells cost the renderer seconds on this page. A click on a row with `pick` drills into that area
  // (the areas table: the ck-as-pick store, read by the drill callback) or lists that unit's penalty
  // points (the units table: the ck-as-unit store).
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }

  function paintTable(spec) {
    var nu = window.dash_clientside.no_update;
    if (!spec || !spec.box) { return nu; }
    var box = document.getElementById(spec.box);
    if (!box) { return nu; }
    var top = box.scrollTop;
    box.textContent = "";
    if (!spec.rows || !spec.rows.length) {
      box.appendChild(el("div", "ck-empty-note", spec.empty || "暂无数据"));
      return nu;
    }
    var table = el("table", "ck-as-table"), thead = el("thead"), hr = el("tr"), body = el("tbody");
    table.id = spec.id;
    spec.head.forEach(function (t) { hr.appendChild(el("th", "", t)); });
    thead.appendChild(hr);
    spec.rows.forEach(function (r) {
      var tr = el("tr", "ck-as-row" + (r.cls ? " " + r.cls : "") + (r.pick ? " is-pick" : ""));
      if (r.pick) { tr.setAttribute("data-code", r.pick); }
      if (r.title) { tr.title = r.title; }
      r.cells.forEach(function (c) {
        var td = el("td", c[1] || "");
        if (c[3]) {
          var a = el("a", "ck-as-case", c[0]);
          a.href = c[3];
          a.target = "_blank";
          a.rel = "noopener";
          if (c[2]) { a.title = c[2]; }
          td.appendChild(a);
        } else {
          if (c[1] && c[1].indexOf("ck-as-g ") === 0) { td.className = ""; td.appendChild(el("span", c[1], c[0])); }
          else { td.textContent = c[0]; }
          if (c[2]) { td.title = c[2]; }
        }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    table.appendChild(thead);
    table.appendChild(body);
    box.appendChild(table);
    box.scrollTop = top;
    C.painted = (C.painted || 0) + 1;
    return nu;
  }

  if (!C.clicks) {
    C.clicks = true;
    document.addEventListener("click", function (ev) {
      var tr = ev.target && ev.target.closest ? ev.target.closest("tr.is-pick") : null;
      if (!tr || ev.target.closest("a")) { return; }
      var box = tr.closest(".ck-as-painted");
      var code = tr.getAttribute("data-code");
      if (!box || !code) { return; }
      if (box.id === "ck-as-areas-body") { setProps("ck-as-pick", {data: {code: code, t: Date.now()}}); }
      else if (box.id === "ck-as-units-body") { setProps("ck-as-unit", {data: code}); }
    });
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    cockpit: {
      paintTable: paintTable,
      start: function (cfg) {
        start(cfg);
        return Date.now();
      },
      render: render
    }
  });
})();
