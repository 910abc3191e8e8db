// The live stream for the pages (wall, cockpit, console, unit workspace, the home page's status line).
//
// A thin layer over the official Socket.IO client (socket.io-client 4.8, vendored as
// assets/vendor/socket.io.min.js, which defines window.io and loads before this file on every page
// that uses it: layouts/scripts.py). WebSocket transport only (no long-polling, so no sticky
// sessions), namespace /live, auth {token} when the page has a token, otherwise no auth (the
// signed-in session's cookie goes with the upgrade request and the live bus resolves it),
// `resync {since}` on every (re)connect, every seq handed to the page once.
// Not a Dash callback input on purpose: Dash merges quick successive prop changes into one call,
// so a burst would lose messages; pages hand Dash what they made of them (dash_clientside.set_props).
//
//   var conn = window.uccLive.connect({
//     token: "…" | null,          // null: the session
//     since: function () {…},     // where to resync from before anything was seen (e.g. a snapshot's head)
//     replay: true,               // false: resync {since: null} (just go live; the page reloads instead)
//     onEvent: function (msg, conn) {…},     // each case_event, once per seq
//     onAlarm: function (msg, conn) {…},     // each alarm_event {alarm} (no seq: alarms have no outbox)
//     onWarning: function (msg, conn) {…},   // each warning_event {warning} (an early warning stored; no seq)
//     onState: function (state, conn) {…},   // "connecting" | "live" | "down" (conn.error: the refusal)
//     onResync: function (ack, conn) {…}     // after each resync; ack.complete === false: too far behind
//   });
//   conn.connected, conn.error, conn.maxSeq, conn.lastResync, conn.lastMsgAt, conn.connects; conn.close()
//   conn.socket: the socket.io-client Socket underneath (for debugging)
(function () {
  "use strict";
  var NS = "/live";
  var KEEP_SEQS = 5000;
  // The client's own reconnection after a lost or failed transport: 1 s, doubling to at most 15 s.
  var RECONNECT = {reconnectionDelay: 1000, reconnectionDelayMax: 15000, randomizationFactor: 0};
  var REFUSED_WAIT_MS = 30000;  // refused by the server: do not hammer it

  function Conn(opts) {
    this.opts = opts || {};
    this.connected = false;
    this.state = "connecting";
    this.error = null;
    this.maxSeq = null;
    this.lastResync = null;
    this.lastMsgAt = 0;
    this.connects = 0;     // successful connects so far (1 = the first)
    this.failures = 0;     // reconnects this layer scheduled since the last connect
    this.closed = false;
    this.socket = null;
    this._seqs = new Set();
    this._order = [];
    this._open();
  }

  Conn.prototype._call = function (name) {
    var fn = this.opts[name];
    if (typeof fn !== "function") { return; }
    try {
      fn.apply(null, Array.prototype.slice.call(arguments, 1).concat([this]));
    } catch (e) {
      if (window.console) { console.warn("uccLive " + name + " failed", e); }
    }
  };

  Conn.prototype._setState = function (state) {
    this.connected = state === "live";
    if (this.state !== state) {
      this.state = state;
      this._call("onState", state);
    }
  };

  Conn.prototype._open = function () {
    if (this.closed) { return; }
    if (typeof window.io !== "function") {  // the bundle did not load: down, and try again later
      this._setState("down");
      this._retry();
      return;
    }
    var self = this, token = this.opts.token;
    var socket = window.io(NS, Object.assign({
      path: "/socket.io",
      transports: ["websocket"],
      forceNew: true,  // a connection of its own, never a manager shared with another conn on the page
      auth: token ? {token: token} : undefined
    }, RECONNECT));
    this.socket = socket;
    socket.on("connect", function () {
      if (self.socket !== socket) { return; }
      self.error = null;
      self.failures = 0;
      self.connects += 1;
      self._setState("live");
      self._resync(socket);
    });
    socket.on("case_event", function (msg) { if (self.socket === socket) { self._event(msg); } });
    socket.on("alarm_event", function (msg) { if (self.socket === socket) { self._call("onAlarm", msg); } });
    socket.on("warning_event", function (msg) { if (self.socket === socket) { self._call("onWarning", msg); } });
    socket.on("connect_error", function (err) {
      if (self.socket !== socket) { return; }
      if (!socket.active) {
        // Refused by the server (connect_error with message, data.error): the client does not
        // retry that on its own.
        self.error = (err && err.message) || "连接被拒绝";
        self._setState("down");
        self._retry();
      } else {
        self._setState("down");  // the transport failed: the client retries with its backoff
      }
    });
    socket.on("disconnect", function () {
      if (self.socket !== socket) { return; }
      self._setState("down");
      // A lost transport (or the server's ping deadline passed) reconnects by itself; a disconnect
      // from the server's side does not.
      if (!socket.active) { self._retry(); }
    });
  };

  // Connect again after a refusal or a server-side disconnect (the cases the client leaves to us).
  Conn.prototype._retry = function () {
    if (this.closed) { return; }
    var wait = Math.min(RECONNECT.reconnectionDelayMax, RECONNECT.reconnectionDelay * Math.pow(2, this.failures));
    this.failures += 1;
    if (this.error) { wait = Math.max(wait, REFUSED_WAIT_MS); }
    var self = this;
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(function () {
      if (self.closed) { return; }
      if (self.socket) { self.socket.connect(); } else { self._open(); }
    }, wait);
  };

  Conn.prototype._event = function (msg) {
    if (!msg || typeof msg.seq !== "number") { return; }
    // Keep a set of recent seqs, not just "≤ last seen": live order may swap by a few ms.
    if (this._seqs.has(msg.seq)) { return; }
    this._seqs.add(msg.seq);
    this._order.push(msg.seq);
    if (this._order.length > KEEP_SEQS) { this._seqs.delete(this._order.shift()); }
    this.maxSeq = Math.max(this.maxSeq || 0, msg.seq);
    this.lastMsgAt = Date.now();
    this._call("onEvent", msg);
  };

  Conn.prototype._resync = function (socket) {
    var self = this, since = null;
    if (this.opts.replay !== false) {
      since = this.maxSeq;
      if ((since === null || since === undefined) && typeof this.opts.since === "function") { since = this.opts.since(); }
      if (since === undefined) { since = null; }
    }
    socket.emit("resync", {since: since}, function (ack) {
      if (self.socket !== socket) { return; }
      self.lastResync = ack;
      if (ack && ack.ok && ack.complete === false) {
        self.maxSeq = ack.head;  // too far behind for a replay: the page reloads, then follows from the head
      } else if (ack && ack.ok) {
        self.maxSeq = Math.max(self.maxSeq || 0, ack.last_seq || 0);
        self.lastMsgAt = Date.now();
      }
      self._call("onResync", ack);
    });
  };

  Conn.prototype.close = function () {
    this.closed = true;
    clearTimeout(this._retryTimer);
    var socket = this.socket;
    this.socket = null;
    if (socket) { try { socket.disconnect(); } catch (e) { /* already closing */ } }
    this._setState("down");
  };

  window.uccLive = {
    NS: NS,
    connect: function (opts) { return new Conn(opts); }
  };
})();
