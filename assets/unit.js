// Clientside half of the unit workspace (/unit): the live stream that brings new dispatches without a
// reload; and the photo pre-check shared by /unit and /report (type by magic bytes, size, before anything
// is sent). The server checks every photo again (data/photos.py): this only spares a phone a useless upload.
//
// Live: window.uccLive (assets/live_client.js) keeps the connection, resyncs from the page's outbox head
// and hands each case event over once; this file turns them into list reloads and a "new dispatch" toast.
// A signed-in page sends no token: the session cookie of the WebSocket handshake authenticates it.
(function () {
  "use strict";
  var U = window.uccUnit = window.uccUnit || {n: 0, newIds: new Set(), changed: new Set()};
  var P = window.uccPhoto = window.uccPhoto || {rejected: {}};
  var TYPES = {jpeg: "image/jpeg", png: "image/png", webp: "image/webp"};
  var TYPES_TEXT = "JPEG、PNG、WebP";

  // Only while the page that owns the id is on screen (stores have no element to look for).
  function setProps(id, props) {
    var page = id.indexOf("un-") === 0 ? ".un" : (id.indexOf("rp-") === 0 ? ".rp" : null);
    if (page && !document.querySelector(page)) { return; }
    if (window.dash_clientside && window.dash_clientside.set_props) { window.dash_clientside.set_props(id, props); }
  }
  function nu() { return window.dash_clientside.no_update; }
  function mb(n) { return n < 1048576 ? Math.max(1, Math.round(n / 1024)) + " KB" : (n / 1048576).toFixed(1) + " MB"; }

  // ---- photos -----------------------------------------------------------------------------------------
  // What the first bytes say the image is (the server's data/photos.py sniff, mirrored).
  function sniff(bytes) {
    if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) { return "jpeg"; }
    if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47 &&
        bytes[4] === 0x0d && bytes[5] === 0x0a && bytes[6] === 0x1a && bytes[7] === 0x0a) { return "png"; }
    if (bytes.length >= 12 && String.fromCharCode.apply(null, bytes.slice(0, 4)) === "RIFF" &&
        String.fromCharCode.apply(null, bytes.slice(8, 12)) === "WEBP") { return "webp"; }
    return null;
  }
  function extOf(name) {
    var m = /\.([A-Za-z0-9]{1,5})$/.exec(name || "");
    return m ? "（" + m[1].toUpperCase() + "）" : "";
  }
  function badType(name) { return "不支持的文件类型" + extOf(name) + "：只接受 " + TYPES_TEXT + " 图片"; }
  function tooBig(size, max) { return "照片过大（" + mb(size) + "），最大 " + Math.round(max / 1048576) + " MB"; }

  // A data: URL from dcc.Upload → "" when acceptable, else the reason.
  P.problem = function (contents, name, max) {
    var comma = contents.indexOf(",");
    if (comma < 0 || contents.slice(0, comma).indexOf(";base64") < 0) { return "照片数据无效，请重新选择"; }
    var body = contents.slice(comma + 1);
    var pad = body.endsWith("==") ? 2 : (body.endsWith("=") ? 1 : 0);
    var size = Math.floor(body.length * 3 / 4) - pad;
    if (size <= 0) { return "照片是空文件，请重新拍摄或选择"; }
    if (size > max) { return tooBig(size, max); }
    var head;
    try { head = atob(body.slice(0, 24)); } catch (e) { return "照片数据无效，请重新选择"; }
    var bytes = [];
    for (var i = 0; i < head.length; i++) { bytes.push(head.charCodeAt(i)); }
    return sniff(bytes) ? "" : badType(name);
  };
  P.size = function (contents) {
    var body = contents.slice(contents.indexOf(",") + 1);
    return Math.floor(body.length * 3 / 4);
  };

  function showProblem(id, message) {
    P.rejected[id] = true;
    setProps(id, {contents: null, filename: null});
    setProps(id + "-preview", {src: "", style: {display: "none"}});
    setProps(id + "-msg", {children: message, className: "ucc-photo-msg ucc-photo-msg--bad"});
  }

  // The upload component refuses some files by itself (wrong type for its accept list, over max_size)
  // and then says nothing: catch those here, before it does, and say why.
  function uploadId(el) {
    var box = el && el.closest ? el.closest(".ucc-photo-upload") : null;
    var host = box ? box.parentElement.closest("[id]") : null;
    return host ? host.id : (box && box.id ? box.id : null);
  }
  function accepts(accept, file) {
    if (!accept) { return true; }
    var type = (file.type || "").toLowerCase(), name = (file.name || "").toLowerCase();
    return accept.split(",").some(function (a) {
      a = a.trim().toLowerCase();
      if (a.endsWith("/*")) { return type.indexOf(a.slice(0, -1)) === 0; }
      if (a.charAt(0) === ".") { return name.endsWith(a); }
      return a === type;
    });
  }
  function checkFiles(target, files) {
    var id = uploadId(target);
    if (!id || !files || !files.length) { return; }
    var f = files[0], box = target.closest(".ucc-photo-upload");
    var input = box.querySelector("input[type=file]");
    var max = P.max || 8 * 1048576;
    if (f.size === 0) { showProblem(id, "照片是空文件，请重新拍摄或选择"); }
    else if (f.size > max) { showProblem(id, tooBig(f.size, max)); }
    else if (input && !accepts(input.getAttribute("accept"), f)) { showProblem(id, badType(f.name)); }
  }
  document.addEventListener("change", function (e) {
    if (e.target && e.target.type === "file") { checkFiles(e.target, e.target.files); }
  }, true);
  document.addEventListener("drop", function (e) {
    if (e.dataTransfer) { checkFiles(e.target, e.dataTransfer.files); }
  }, true);

  // The preview callback of one upload: [img src, img style, message, message class].
  function preview(id, contents, name, cfg) {
    var msgClass = "ucc-photo-msg";
    if (cfg && cfg.max_bytes) { P.max = cfg.max_bytes; }
    if (!contents) {
      if (P.rejected[id]) { P.rejected[id] = false; return ["", {display: "none"}, nu(), nu()]; }
      return ["", {display: "none"}, "", msgClass];
    }
    var problem = P.problem(contents, name, P.max || 8 * 1048576);
    if (problem) {
      setTimeout(function () { showProblem(id, problem); }, 0);
      return ["", {display: "none"}, problem, msgClass + " ucc-photo-msg--bad"];
    }
    return [contents, {}, "已选择：" + (name || "照片") + "（" + mb(P.size(contents)) + "）", msgClass + " ucc-photo-msg--ok"];
  }

  // ---- the live stream (assets/live_client.js) ------------------------------------------------------------
  var STATES = {connecting: ["正在连接…", ""], live: ["已连接", "un-conn--ok"], down: ["连接中断，正在重连…", "un-conn--down"]};

  function status(text, cls) { setProps("un-conn", {children: "实时推送：" + text, className: "un-conn " + (cls || "")}); }

  // Many events in a burst (a replay after a reconnect) make one list reload.
  function flush() {
    U.flushTimer = null;
    U.n += 1;
    setProps("un-live", {data: {n: U.n, "new": Array.from(U.newIds), changed: Array.from(U.changed), reload: !!U.reload}});
    U.changed = new Set();
    U.reload = false;
  }
  function schedule() { if (!U.flushTimer) { U.flushTimer = setTimeout(flush, 250); } }

  function toast(text) {
    setProps("un-toast", {children: text, className: "un-toast un-toast--on"});
    clearTimeout(U.toastTimer);
    U.toastTimer = setTimeout(function () { setProps("un-toast", {className: "un-toast"}); }, 8000);
  }

  // Each case event once (the client drops repeated seqs): a dispatch to this unit is news; anything
  // else about a case may change the list or the case on screen.
  function onCaseEvent(msg) {
    var c = msg && msg.case;
    if (!c) { return; }
    var mine = !U.cfg.unit || (c.unit && c.unit.code === U.cfg.unit);
    if (c.state === "dispatched" && mine) {
      if (!U.newIds.has(c.id)) { toast("新派遣案件 #" + c.id + " " + ((c.category && c.category.name) || "")); }
      U.newIds.add(c.id);
    } else {
      U.newIds.delete(c.id);
    }
    U.changed.add(c.id);
    schedule();
  }

  function start(cfg) {
    if (!cfg) { return nu(); }
    U.cfg = cfg;
    if (cfg.max_bytes) { P.max = cfg.max_bytes; }
    if (U.conn || !cfg.live) { return Date.now(); }
    if (!window.uccLive || typeof window.uccLive.connect !== "function") {
      status("不可用，每 30 秒刷新", "un-conn--down");
      return Date.now();
    }
    U.conn = window.uccLive.connect({
      token: null,  // the session cookie of the WebSocket upgrade speaks for the signed-in person
      since: function () { return U.cfg.since; },  // the outbox head when the page was built
      onEvent: onCaseEvent,
      onState: function (state, conn) {
        var s = STATES[state] || STATES.down;
        if (state === "down" && conn.error) { status("⚠ " + conn.error, "un-conn--down"); } else { status(s[0], s[1]); }
      },
      onResync: function (ack) {
        if (!ack || !ack.ok || ack.complete === false) { U.reload = true; schedule(); }  // read the list again
      }
    });
    return Date.now();
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    ucc_unit: {
      start: start,
      // On a phone the list and the case are stacked: a case scrolls into view once it is drawn, the first
      // time it is shown (not at every refresh of the same case)
      reveal: function (shown) {
        var id = shown && shown.id;
        if (!id || id === U.revealed) { return nu(); }
        U.revealed = id;
        if (window.innerWidth <= 640) {
          var el = document.querySelector(".un-detail");
          if (el) { el.scrollIntoView({block: "start"}); }
        }
        return nu();
      }
    },
    ucc_photo: {
      unit: function (contents, name, cfg) { return preview("un-photo", contents, name, cfg); },
      report: function (contents, name, cfg) { return preview("rp-photo", contents, name, cfg); }
    }
  });
})();
