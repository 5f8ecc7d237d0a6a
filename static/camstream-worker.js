// A SharedWorker: one connection to a camstream server for every tab of this browser.
//
// Browsers open at most six HTTP/1.1 connections to a host and an MJPEG
// stream holds one for as long as it runs, so plain <img> streams stop
// working at the seventh. Tabs tell this worker which cameras they show;
// it reads them all from one multiplexed stream (/streams?cameras=a,b) and
// hands each JPEG, as a Blob, to the tabs showing that camera. Tabs that
// want the server's events (detections, states, status) share one
// EventSource on /events the same way.
"use strict";

var BOUNDARY = "--frame\r\n";
var ports = new Map();        // port -> {base, cameras: Set, seen: time of last message}
var connections = new Map();  // base URL -> connection
var encoder = new TextEncoder();
var decoder = new TextDecoder("latin1");

function wanted(base) {
  var names = new Set();
  ports.forEach(function (tab) {
    if (tab.base === base) tab.cameras.forEach(function (name) { names.add(name); });
  });
  return Array.from(names).sort();
}

function deliver(base, camera, blob) {
  ports.forEach(function (tab, port) {
    if (tab.base === base && tab.cameras.has(camera)) port.postMessage({ type: "frame", camera: camera, blob: blob });
  });
}

// The server wants a sign-in (a session that ended): tell its tabs, which decide what to do.
function signedOut(base) {
  ports.forEach(function (tab, port) {
    if (tab.base === base) port.postMessage({ type: "signed-out" });
  });
}

function indexOf(bytes, pattern, from) {
  var first = pattern[0];
  for (var i = bytes.indexOf(first, from); i !== -1 && i <= bytes.length - pattern.length; i = bytes.indexOf(first, i + 1)) {
    var j = 1;
    while (j < pattern.length && bytes[i + j] === pattern[j]) j++;
    if (j === pattern.length) return i;
  }
  return -1;
}

// Splits the multiplexed stream into (camera, JPEG) pairs as bytes arrive.
function Parser(onPart) {
  this.buffer = new Uint8Array(0);
  this.state = "boundary";
  this.headers = null;
  this.onPart = onPart;
}
Parser.prototype.push = function (chunk) {
  var joined = new Uint8Array(this.buffer.length + chunk.length);
  joined.set(this.buffer);
  joined.set(chunk, this.buffer.length);
  var bytes = joined, pos = 0, boundary = encoder.encode(BOUNDARY), blank = encoder.encode("\r\n\r\n");
  for (;;) {
    if (this.state === "boundary") {
      var at = indexOf(bytes, boundary, pos);
      if (at === -1) break;
      pos = at + boundary.length;
      this.state = "headers";
    } else if (this.state === "headers") {
      var end = indexOf(bytes, blank, pos);
      if (end === -1) break;
      this.headers = {};
      decoder.decode(bytes.subarray(pos, end)).split("\r\n").forEach(function (line) {
        var colon = line.indexOf(":");
        if (colon > 0) this.headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }, this);
      pos = end + blank.length;
      this.state = "body";
    } else {
      var length = parseInt(this.headers["content-length"], 10);
      if (!(length >= 0)) throw new Error("a part without Content-Length");
      if (bytes.length - pos < length) break;
      this.onPart(this.headers["x-camera"], bytes.slice(pos, pos + length));
      pos += length;
      this.state = "boundary";
    }
  }
  this.buffer = bytes.slice(pos);
};

function Connection(base) {
  this.base = base;
  this.names = [];
  this.controller = null;
  this.retry = 1000;
  this.timer = null;
  this.pending = null;
}
Connection.prototype.update = function () {
  var names = wanted(this.base);
  if (names.join(",") === this.names.join(",") && (this.controller || this.timer)) return;
  this.names = names;
  this.stop();
  if (names.length) this.start();
  else connections.delete(this.base);
};
Connection.prototype.stop = function () {
  if (this.controller) this.controller.abort();
  this.controller = null;
  clearTimeout(this.timer);
  this.timer = null;
};
Connection.prototype.start = function () {
  var self = this, controller = new AbortController();
  var url = this.base + "streams?cameras=" + this.names.map(encodeURIComponent).join(",");
  this.controller = controller;
  var parser = new Parser(function (camera, jpeg) {
    self.retry = 1000;
    deliver(self.base, camera, new Blob([jpeg], { type: "image/jpeg" }));
  });
  fetch(url, { cache: "no-store", signal: controller.signal })
    .then(function (response) {
      if (response.status === 401) signedOut(self.base);
      if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
      var reader = response.body.getReader();
      function pump() {
        return reader.read().then(function (result) {
          if (result.done) throw new Error("the stream ended");
          parser.push(result.value);
          return pump();
        });
      }
      return pump();
    })
    .catch(function () {
      if (self.controller !== controller) return;  // replaced or stopped on purpose
      // The server restarted or the network dropped: try again, backing off.
      self.controller = null;
      self.timer = setTimeout(function () { self.timer = null; self.start(); }, self.retry);
      self.retry = Math.min(self.retry * 2, 10000);
    });
};

// Tabs announce their cameras one message at a time; gather them for a
// moment so that a page of cameras opens one connection, not one per camera.
function refresh(base) {
  var connection = connections.get(base);
  if (!connection) {
    connection = new Connection(base);
    connections.set(base, connection);
  }
  clearTimeout(connection.pending);
  connection.pending = setTimeout(function () { connection.update(); }, 50);
}

var eventSources = new Map();  // base URL -> EventSource, while a tab of that server wants events

function updateEvents(base) {
  var wantedBy = 0;
  ports.forEach(function (tab) { if (tab.base === base && tab.events) wantedBy += 1; });
  var source = eventSources.get(base);
  if (wantedBy && !source) {
    // EventSource reconnects by itself and resumes with Last-Event-ID.
    source = new EventSource(base + "events");
    ["detection", "state", "status"].forEach(function (kind) {
      source.addEventListener(kind, function (event) {
        var data = JSON.parse(event.data);
        ports.forEach(function (tab, port) {
          if (tab.base === base && tab.events) port.postMessage({ type: "event", kind: kind, data: data });
        });
      });
    });
    eventSources.set(base, source);
  } else if (!wantedBy && source) {
    source.close();
    eventSources.delete(base);
  }
}

function forget(port) {
  var tab = ports.get(port);
  if (!tab) return;
  ports.delete(port);
  refresh(tab.base);
  updateEvents(tab.base);
}

self.onconnect = function (event) {
  var port = event.ports[0];
  port.onmessage = function (message) {
    var data = message.data, tab = ports.get(port);
    if (data.type === "watch") {
      if (!tab) ports.set(port, tab = { base: data.base, cameras: new Set(), seen: Date.now() });
      tab.cameras.add(data.camera);
      tab.seen = Date.now();
      refresh(tab.base);
    } else if (data.type === "unwatch" && tab) {
      tab.cameras.delete(data.camera);
      refresh(tab.base);
    } else if (data.type === "events") {
      if (!tab) ports.set(port, tab = { base: data.base, cameras: new Set(), seen: Date.now() });
      tab.events = true;
      updateEvents(tab.base);
    } else if (data.type === "leave") {
      forget(port);
    } else if (tab) {
      tab.seen = Date.now();  // "ping"
    }
  };
  port.start();
};

// A tab that was killed never says "leave"; it stops pinging.
setInterval(function () {
  var now = Date.now();
  ports.forEach(function (tab, port) { if (now - tab.seen > 15000) forget(port); });
}, 5000);
