// Clientside half of /emergency (应急一张图): the live stream, the owed reports' countdowns, the URL of the selection.
//
// Live: window.uccLive (assets/live_client.js) keeps the connection and hands each case event over once; an event
// about an emergency case (or the one on screen) makes the page read again (callbacks/emergency.py), at most every
// 2 s; an alarm event, at most every 10 s (the map's alarms). The page also reads again every 30 s by itself.
(function () {
  "use strict";
  var E = window.uccEmergency = window.uccEmergency || {n: 0, timer: null, conn: null};
  var CASE_GAP_MS = 2000, ALARM_GAP_MS = 10000;
  var STATES = {connecting: ["正在连接…", ""], live: ["已连接", "em-conn--ok"], down: ["连接中断，正在重连…", "em-conn--down"]};

  function onPage() { return !!document.querySelector(".em"); }
  function setProps(id, props) {
    if (onPage() && window.dash_clientside && window.dash_clientside.set_props) {
      window.dash_clientside.set_props(id, props);
    }
  }
  function nu() { return window.dash_clientside.no_update; }

  function status(text, cls) { setProps("em-conn", {children: "实时推送：" + text, className: "em-conn " + (cls || "")}); }

  function flush() {
    E.timer = null;
    E.n += 1;
    setProps("em-live", {data: E.n});
  }
  function schedule(gap) {
    if (E.timer) { return; }
    E.timer = setTimeout(flush, gap);
  }

  function shownCase() {
    var el = document.querySelector(".em-head-id");
    return el ? parseInt(el.textContent.replace("#", ""), 10) : null;
  }

  function onCaseEvent(msg) {
    var c = msg && msg.case;
    if (!c) { return; }
    if (c.kind === "emergency" || c.id === shownCase()) { schedule(CASE_GAP_MS); }
  }

  // The owed reports count down each second between the page's reads.
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function span(minutes) {
    var m = Math.floor(Math.abs(minutes)), d = Math.floor(m / 1440), h = Math.floor((m % 1440) / 60), mm = m % 60;
    if (d) { return d + "天" + h + "小时"; }
    if (h) { return h + "小时" + pad(mm) + "分"; }
    return mm + "分钟";
  }
  function tick() {
    if (!onPage()) { return; }
    var now = Date.now();
    document.querySelectorAll(".em-cd[data-due]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      if (isNaN(due)) { return; }
      var left = (due - now) / 60000;
      var text = left < 0 ? "已超时 " + span(left) : "剩余 " + span(left);
      if (el.textContent !== text) { el.textContent = text; }
      el.classList.toggle("is-over", left < 0);
      el.classList.toggle("is-near", left >= 0 && left < 10);
    });
  }
  if (!E.ticking) { E.ticking = setInterval(tick, 1000); }

  function start(cfg) {
    if (!cfg) { return nu(); }
    if (E.conn || !cfg.live) {
      if (!cfg.live) { status("未开启，每 30 秒刷新", "em-conn--down"); }
      return Date.now();
    }
    if (!window.uccLive || typeof window.uccLive.connect !== "function") {
      status("不可用，每 30 秒刷新", "em-conn--down");
      return Date.now();
    }
    E.conn = window.uccLive.connect({
      token: null,  // the session cookie of the WebSocket upgrade speaks for the signed-in person
      since: function () { return cfg.since; },
      onEvent: onCaseEvent,
      onAlarm: function () { schedule(ALARM_GAP_MS); },
      onState: function (state, conn) {
        var s = STATES[state] || STATES.down;
        if (state === "down" && conn.error) { status("⚠ " + conn.error, "em-conn--down"); } else { status(s[0], s[1]); }
      },
      onResync: function (ack) { if (!ack || !ack.ok || ack.complete === false) { schedule(CASE_GAP_MS); } }
    });
    return Date.now();
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    ucc_emergency: {
      start: start,
      url: function (selected) {
        if (selected && window.history && window.history.replaceState) {
          var url = new URL(window.location.href);
          if (url.searchParams.get("case") !== String(selected)) {
            url.searchParams.set("case", String(selected));
            window.history.replaceState(window.history.state, "", url.toString());
          }
        }
        return nu();
      }
    }
  });
})();
