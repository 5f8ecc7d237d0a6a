// <camstream-view camera="door" server="http://camstream.local:8000/"></camstream-view>
//
// Shows one camstream camera live. On a page served by camstream itself, all
// views in all tabs of the browser share one connection through a
// SharedWorker (camstream-worker.js); elsewhere, or without SharedWorker, it
// is a plain MJPEG <img>. Either way it always shows the newest frame.
// `server` defaults to the server this script came from.
(function () {
  "use strict";

  var script = document.currentScript;
  var scriptBase = new URL(".", script ? script.src : document.baseURI);  // .../static/
  var defaultServer = new URL("..", scriptBase).href;
  var shared = null;

  function sharedWorker() {
    if (shared === null) {
      try {
        var worker = new SharedWorker(new URL("camstream-worker.js", scriptBase).href, { name: "camstream" });
        shared = { port: worker.port, views: new Set() };
        shared.listeners = [];
        shared.port.onmessage = function (event) {
          var data = event.data;
          if (data.type === "event") {
            shared.listeners.forEach(function (listener) { listener(data.kind, data.data); });
          } else if (data.type === "frame") {
            shared.views.forEach(function (view) { if (view.camera === data.camera) view.show(data.blob); });
          } else if (data.type === "signed-out") {
            // camstream's own page goes to its login form; a page that embeds the view may listen too.
            document.dispatchEvent(new CustomEvent("camstream-signed-out"));
          }
        };
        shared.port.start();
        setInterval(function () { shared.port.postMessage({ type: "ping" }); }, 5000);
        window.addEventListener("pagehide", function () { shared.port.postMessage({ type: "leave" }); });
      } catch (error) {
        shared = false;
      }
    }
    return shared;
  }

  class CamstreamView extends HTMLElement {
    connectedCallback() {
      this.camera = this.getAttribute("camera") || "";
      this.server = new URL(this.getAttribute("server") || defaultServer, document.baseURI).href;
      this.frames = 0;
      this.pending = null;
      this.loading = false;
      this.img = this.querySelector("img") || document.createElement("img");
      this.img.alt = this.img.alt || "live view of " + this.camera;
      if (!this.img.parentNode) this.appendChild(this.img);
      // Embedded without camstream's stylesheet, the picture still fits whatever holds it.
      if (!this.img.style.maxWidth) this.img.style.maxWidth = "100%";
      var sameServer = new URL(this.server).origin === location.origin;
      var worker = sameServer && !this.hasAttribute("direct") && "SharedWorker" in window ? sharedWorker() : false;
      if (worker) {
        this.mode = "shared";
        worker.views.add(this);
        worker.port.postMessage({ type: "watch", base: this.server, camera: this.camera });
        this.img.addEventListener("load", this.shown.bind(this));
        this.img.addEventListener("error", this.shown.bind(this));
      } else {
        this.mode = "direct";
        this.img.addEventListener("load", function () { this.frames += 1; }.bind(this));
        this.img.src = this.server + "video_feed/" + encodeURIComponent(this.camera);
      }
      this.dataset.mode = this.mode;
    }

    disconnectedCallback() {
      if (this.mode === "shared" && shared) {
        shared.views.delete(this);
        shared.port.postMessage({ type: "unwatch", camera: this.camera });
      }
      this.img.removeAttribute("src");
    }

    // Newest frame wins: while one is decoding, later ones replace each other.
    show(blob) {
      this.pending = blob;
      if (!this.loading) this.next();
    }

    next() {
      var blob = this.pending;
      this.pending = null;
      if (!blob) return;
      this.loading = true;
      this.previousUrl = this.img.src;
      this.img.src = URL.createObjectURL(blob);
    }

    shown() {
      if (this.previousUrl && this.previousUrl.startsWith("blob:")) URL.revokeObjectURL(this.previousUrl);
      this.previousUrl = null;
      this.loading = false;
      this.frames += 1;
      this.dataset.frames = this.frames;
      this.next();
    }
  }

  // camstreamEvents(listener, server): listener(kind, data) for each of the server's events
  // ("detection", "state", "status"), through the shared worker's one EventSource when it can.
  window.camstreamEvents = function (listener, server) {
    var base = new URL(server || defaultServer, document.baseURI).href;
    var worker = new URL(base).origin === location.origin && "SharedWorker" in window ? sharedWorker() : false;
    if (worker) {
      worker.listeners.push(listener);
      worker.port.postMessage({ type: "events", base: base });
      return;
    }
    var source = new EventSource(base + "events");
    ["detection", "state", "status"].forEach(function (kind) {
      source.addEventListener(kind, function (event) { listener(kind, JSON.parse(event.data)); });
    });
  };

  if (!customElements.get("camstream-view")) customElements.define("camstream-view", CamstreamView);
})();
