// The live stream for the pages (the wall, the cockpit): one small client, no library.
//
// Speaks Socket.IO v4 over a plain WebSocket: namespace /live, auth {token} when the page has a
// token, otherwise no auth (the signed-in session's cookie goes with the upgrade request and the
// live bus resolves it), `resync {since}` on every connect, every seq handed to the page once.
// Not a Dash callback input on purpose: Dash merges quick successive prop changes into one call,
// so a burst would lose messages; pages hand Dash what they made of them (dash_clientside.set_props).
//
//   var conn = window.uccLive.connect({
//     token: "…" | null,          // null: the session
//     since: function () {…},     // where to resync from before anything was seen (e.g. a snapshot's head)
//     replay: true,               // false: resync {since: null} (just go live; the page reloads instead)
//     onEvent: function (msg, conn) {…},     // each case_event, once per seq
//     onState: function (state, conn) {…},   // "connecting" | "live" | "down" (conn.error: the refusal)
//     onResync: function (ack, conn) {…}     // after each resync; ack.complete === false: too far behind
//   });
//   conn.connected, conn.error, conn.maxSeq, conn.lastResync, conn.lastMsgAt, conn.connects; conn.close()
(function () {
  "use strict";
  var NS = "/live";
  var KEEP_SEQS = 5000;
  // Socket.IO v4 over a WebSocket: Engine.IO packets 0 open, 1 close, 2 ping, 3 pong, 4 message;
  // Socket.IO packets (inside 4) 0 connect, 1 disconnect, 2 event, 3 ack, 4 connect error.

  function Conn(opts) {
    this.opts = opts || {};
    this.connected = false;
    this.state = "connecting";
    this.error = null;
    this.maxSeq = null;
    this.lastResync = null;
    this.lastMsgAt = 0;
    this.connects = 0;     // successful connects so far (1 = the first)
    this.failures = 0;
    this.closed = false;
    this.ws = null;
    this._seqs = new Set();
    this._order = [];
    this._acks = {};
    this._ackId = 0;
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
    var self = this;
    var proto = window.location.protocol === "https:" ? "wss:" : "ws:";
    var ws;
    try {
      ws = new WebSocket(proto + "//" + window.location.host + "/socket.io/?EIO=4&transport=websocket");
    } catch (e) {
      return this._retry();
    }
    this.ws = ws;
    ws.onmessage = function (ev) { if (self.ws === ws) { self._packet(ws, String(ev.data)); } };
    ws.onclose = function () { if (self.ws === ws) { self._drop(); } };
  };

  // The connection is gone (closed, refused, or silent past the server's ping deadline).
  Conn.prototype._drop = function () {
    var ws = this.ws;
    this.ws = null;
    clearTimeout(this._watchdog);
    if (ws) { try { ws.close(); } catch (e) { /* already closing */ } }
    this._setState("down");
    this._retry();
  };

  Conn.prototype._retry = function () {
    if (this.closed) { return; }
    var wait = Math.min(15000, 1000 * Math.pow(2, this.failures));
    this.failures += 1;
    if (this.error) { wait = Math.max(wait, 30000); }  // refused: do not hammer the server
    var self = this;
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(function () { self._open(); }, wait);
  };

  // A half-open socket (a sleeping laptop, a dropped NAT entry) never fires onclose: the server
  // pings every pingInterval, so silence past pingInterval + pingTimeout means it is gone.
  Conn.prototype._alive = function () {
    var self = this, ws = this.ws;
    clearTimeout(this._watchdog);
    if (!this._deadline) { return; }
    this._watchdog = setTimeout(function () { if (self.ws === ws) { self._drop(); } }, this._deadline);
  };

  Conn.prototype._send = function (ws, text) { if (ws && ws.readyState === 1) { ws.send(text); } };

  Conn.prototype._packet = function (ws, data) {
    var type = data.charAt(0);
    this._alive();
    if (type === "0") {
      try {
        var hello = JSON.parse(data.slice(1));
        this._deadline = (hello.pingInterval || 25000) + (hello.pingTimeout || 20000) + 1000;
      } catch (e) { this._deadline = 46000; }
      this._alive();
      var token = this.opts.token;
      this._send(ws, "40" + NS + "," + (token ? JSON.stringify({token: token}) : ""));
    } else if (type === "2") {
      this._send(ws, "3");
    } else if (type === "1") {
      this._drop();
    } else if (type === "4") {
      var ptype = data.charAt(1), body = data.slice(2);
      if (body.indexOf(NS + ",") === 0) { body = body.slice(NS.length + 1); } else if (body === NS) { body = ""; }
      if (ptype === "0") {
        this.error = null;
        this.failures = 0;
        this.connects += 1;
        this._setState("live");
        this._resync(ws);
      } else if (ptype === "4") {
        try { this.error = JSON.parse(body).message || "连接被拒绝"; } catch (e) { this.error = "连接被拒绝"; }
        this._drop();
      } else if (ptype === "1") {
        this._drop();
      } else if (ptype === "2" || ptype === "3") {
        var m = /^(\d*)(\[[\s\S]*)$/.exec(body);
        if (!m) { return; }
        var args;
        try { args = JSON.parse(m[2]); } catch (e) { return; }
        if (ptype === "2" && args[0] === "case_event") {
          this._event(args[1]);
        } else if (ptype === "3" && this._acks[m[1]]) {
          var fn = this._acks[m[1]];
          delete this._acks[m[1]];
          fn(args[0]);
        }
      }
    }
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

  Conn.prototype._resync = function (ws) {
    var self = this, since = null;
    if (this.opts.replay !== false) {
      since = this.maxSeq;
      if ((since === null || since === undefined) && typeof this.opts.since === "function") { since = this.opts.since(); }
      if (since === undefined) { since = null; }
    }
    this._ackId += 1;
    this._acks[this._ackId] = function (ack) {
      self.lastResync = ack;
      if (ack && ack.ok && ack.complete === false) {
        self.maxSeq = ack.head;  // too far behind for a replay: the page reloads, then follows from the head
      } else if (ack && ack.ok) {
        self.maxSeq = Math.max(self.maxSeq || 0, ack.last_seq || 0);
        self.lastMsgAt = Date.now();
      }
      self._call("onResync", ack);
    };
    this._send(ws, "42" + NS + "," + this._ackId + JSON.stringify(["resync", {since: since}]));
  };

  Conn.prototype.close = function () {
    this.closed = true;
    clearTimeout(this._retryTimer);
    clearTimeout(this._watchdog);
    var ws = this.ws;
    this.ws = null;
    if (ws) { try { ws.close(); } catch (e) { /* already closing */ } }
    this._setState("down");
  };

  window.uccLive = {
    NS: NS,
    connect: function (opts) { return new Conn(opts); }
  };
})();
