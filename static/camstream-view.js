// <camstream-view camera="door" server="http://camstream.local:8000/"></camstream-view>
//
// Shows one camstream camera live. With the `video` attribute (a camera whose
// own H.264 or H.265 camstream passes through), it plays that video in a muted
// <video> through Media Source Extensions (/mse/<camera>), staying near the
// live edge; where the browser cannot play it, it falls back to MJPEG. MJPEG
// views on a page served by camstream itself share one connection for all
// tabs through a SharedWorker (camstream-worker.js); elsewhere, or without
// SharedWorker, the view is a plain MJPEG <img>. Either way it shows the
// newest picture. `server` defaults to the server this script came from.
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
      this.showPlaceholder();
      if (this.hasAttribute("video") && "MediaSource" in window) this.playVideo();
      else this.playMjpeg();
    }

    // Until the first picture: a dark box that says what is coming, never a broken-image icon. Styled here, so
    // it looks the same embedded in a page without camstream's stylesheet.
    showPlaceholder() {
      if (this.placeholder) return;
      var box = document.createElement("div");
      box.dataset.field = "placeholder";
      box.textContent = "connecting to " + this.camera + "\u2026";
      box.style.cssText = "display:grid;place-items:center;aspect-ratio:4/3;width:100%;background:#202020;" +
        "color:#aaa;font:14px system-ui,sans-serif";
      this.placeholder = box;
      this.insertBefore(box, this.firstChild);
    }

    // The first picture is in: the placeholder goes, the picture shows.
    firstPicture() {
      if (this.placeholder) this.placeholder.remove();
      this.placeholder = null;
      if (this.img) this.img.style.display = "";
    }

    playMjpeg() {
      this.img = this.querySelector("img") || document.createElement("img");
      this.img.alt = this.img.alt || "live view of " + this.camera;
      if (!this.img.parentNode) this.appendChild(this.img);
      // Embedded without camstream's stylesheet, the picture still fits whatever holds it.
      if (!this.img.style.maxWidth) this.img.style.maxWidth = "100%";
      if (this.placeholder) {
        this.placeholder.style.position = "";  // no longer over a video (one that fell back to MJPEG)
        this.placeholder.style.aspectRatio = "4 / 3";
        this.img.style.display = "none";
        this.img.addEventListener("load", this.firstPicture.bind(this), { once: true });
      }
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
      if (this.socket) this.socket.close();
      this.socket = null;
      if (this.img && this.img.tagName === "IMG") this.img.removeAttribute("src");
    }

    // The camera's own video: a text message names its codecs, then the init segment and fragments follow.
    playVideo() {
      var view = this, queue = [], buffer = null, playing = false;
      var video = document.createElement("video");
      video.muted = true;
      video.autoplay = true;
      video.playsInline = true;
      video.style.maxWidth = "100%";
      this.img = video;  // what shows the picture, for the boxes drawn over it
      this.insertBefore(video, this.firstChild);
      if (this.placeholder) {
        // Laid over the video, which must stay shown: a browser does not start a muted video it cannot see.
        if (!this.style.position) this.style.position = "relative";
        this.placeholder.style.position = "absolute";
        this.placeholder.style.inset = "0";
        this.placeholder.style.aspectRatio = "auto";
      }
      this.mode = "video";
      this.dataset.mode = this.mode;
      var url = new URL("mse/" + encodeURIComponent(this.camera), this.server);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      var socket = new WebSocket(url.href);
      socket.binaryType = "arraybuffer";
      this.socket = socket;

      // A camera that is down sends no stream: show its MJPEG, which says "no signal" and why.
      var waiting = setTimeout(fallBack, (Number(this.getAttribute("video-timeout")) || 10) * 1000);
      function fallBack() {
        clearTimeout(waiting);
        if (view.socket !== socket) return;
        view.socket = null;
        socket.close();
        video.remove();
        view.playMjpeg();
      }
      function pump() {
        if (!buffer || buffer.updating || !queue.length) return;
        try {
          buffer.appendBuffer(queue.shift());
        } catch (error) {
          fallBack();
        }
      }
      function keepLive() {
        var ranges = video.buffered;
        if (!ranges.length) return;
        var end = ranges.end(ranges.length - 1);
        // Behind the live edge (a hidden tab, a slow moment): jump to it.
        if (end - video.currentTime > 1.0) video.currentTime = Math.max(ranges.start(ranges.length - 1), end - 0.1);
        if (video.currentTime - ranges.start(0) > 20 && !buffer.updating) buffer.remove(0, video.currentTime - 10);
        if (video.paused) video.play().catch(function () {});
      }
      function counted() {
        view.frames += 1;
        view.dataset.frames = view.frames;
        if (view.socket === socket) video.requestVideoFrameCallback(counted);
      }
      socket.onmessage = function (event) {
        if (typeof event.data !== "string") {
          queue.push(event.data);
          pump();
          return;
        }
        var header = JSON.parse(event.data);
        if (header.type !== "mse") return;
        clearTimeout(waiting);
        if (!MediaSource.isTypeSupported(header.codecs)) { fallBack(); return; }
        // A new stream (the first, or after the camera changed resolution or codec): a new MediaSource.
        queue = [];
        buffer = null;
        var source = new MediaSource();
        video.src = URL.createObjectURL(source);
        source.addEventListener("sourceopen", function () {
          URL.revokeObjectURL(video.src);
          try {
            buffer = source.addSourceBuffer(header.codecs);
          } catch (error) {
            fallBack();
            return;
          }
          buffer.addEventListener("updateend", function () { keepLive(); pump(); });
          pump();
        }, { once: true });
      };
      video.addEventListener("playing", function () {
        if (!playing && "requestVideoFrameCallback" in video) video.requestVideoFrameCallback(counted);
        playing = true;
        view.firstPicture();
      });
      socket.onclose = function () {
        if (view.socket !== socket) return;
        if (!playing) { fallBack(); return; }
        // The server went away or restarted: try again in a moment.
        view.socket = null;
        setTimeout(function () {
          if (!view.isConnected) return;
          video.remove();
          view.playVideo();
        }, 2000);
      };
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
