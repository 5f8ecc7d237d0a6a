// <camstream-view camera="door" server="http://camstream.local:8000/"></camstream-view>
//
// Shows one camstream camera live. With the `video` attribute (a camera whose
// own H.264 or H.265 camstream passes through), it plays that video in a
// <video>: through Media Source Extensions (/mse/<camera>), or iOS Safari's
// ManagedMediaSource where MediaSource is missing, staying near the live
// edge; over WebRTC (WHEP) where the `webrtc` attribute or the page's player
// setting asks, or where neither exists; through the browser's own HLS
// (/hls/<camera>/index.m3u8) where that fails; and MJPEG where none can play
// it. `data-mode` says which plays: video (MSE), webrtc, hls, shared or direct. A camera with sound gets
// a speaker button; it starts muted unless the `sound` attribute asks
// otherwise (and the browser allows it), and the choice is remembered per
// camera. MJPEG views on a page served by camstream itself share one
// connection for all tabs through a SharedWorker (camstream-worker.js);
// elsewhere, or without SharedWorker, the view is a plain MJPEG <img>.
// Either way it shows the newest picture. `server` defaults to the server
// this script came from; `token` (a read-only token) goes with every request.
(function () {
  "use strict";

  var script = document.currentScript;
  var scriptBase = new URL(".", script ? script.src : document.baseURI);  // .../static/
  var defaultServer = new URL("..", scriptBase).href;
  var shared = null;

  // Where the live edge is kept: this far behind the newest frame buffered (a little slack for a late frame or
  // audio), played a little faster when more than NUDGE_AT behind, sought when more than SEEK_AT behind.
  var LIVE_TARGET = 0.5, NUDGE_AT = 1.0, NUDGE_RATE = 1.1, SEEK_AT = 2.0;
  // How close to a hole in what is buffered the playing position may come before it steps over it.
  var HOLE_AHEAD = 0.05;
  // What is kept behind the playing position; more is removed, so a long watch never fills the buffer.
  var KEEP_BEHIND = 10;
  var SPEAKER = '<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" fill="currentColor">' +
    '<path d="M3 9h4l5-4v14l-5-4H3z"/>';
  var SOUND_ON = SPEAKER + '<path d="M15 8.5a5 5 0 0 1 0 7M17.5 6a8.5 8.5 0 0 1 0 12" fill="none" ' +
    'stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>';
  var SOUND_OFF = SPEAKER + '<path d="M15.5 9.5l5 5m0-5l-5 5" stroke="currentColor" stroke-width="2" ' +
    'stroke-linecap="round"/></svg>';

  function noop() {}

  // The page's choice of player for views that name none ("webrtc", or MSE by default), kept by the browser.
  var PLAYER_KEY = "camstream-player";
  var webRtcLoaded = null;

  // camstream-webrtc.js, from beside this script, once for the page.
  function loadWebRtc() {
    if (window.camstreamWebRtc) return Promise.resolve();
    if (!webRtcLoaded) {
      webRtcLoaded = new Promise(function (resolve, reject) {
        var tag = document.createElement("script");
        tag.src = new URL("camstream-webrtc.js", scriptBase).href;
        tag.onload = resolve;
        tag.onerror = reject;
        document.head.appendChild(tag);
      });
    }
    return webRtcLoaded;
  }

  // The bytes of several fragments as one, so a slow moment's backlog is one append, not one per fragment.
  function joined(chunks) {
    if (chunks.length === 1) return chunks[0];
    var size = chunks.reduce(function (total, chunk) { return total + chunk.byteLength; }, 0);
    var out = new Uint8Array(size), at = 0;
    chunks.forEach(function (chunk) { out.set(new Uint8Array(chunk), at); at += chunk.byteLength; });
    return out;
  }

  // The index of the buffered range that holds `time`, or -1.
  function rangeAt(ranges, time) {
    for (var i = 0; i < ranges.length; i++) {
      if (time >= ranges.start(i) && time <= ranges.end(i)) return i;
    }
    return -1;
  }

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

  // The cameras' states as the server's pushed events say them (camstreamEvents below), for views still waiting
  // for their video: a camera that is down sends none, so such a view gives up on it at once (see cameraState)
  // instead of after its video timeout. One listener per server, through the shared worker's one EventSource,
  // for views on camstream's own pages only (elsewhere the events would cost a connection per page, and a view's
  // token does not open them).
  var states = new Map();  // server + camera -> { state, reason, reached }
  var waitingViews = new Map();  // server -> the views of that server waiting for their video

  function stateKey(server, camera) { return server + "\n" + camera; }

  function followStates(server) {
    if (waitingViews.has(server)) return;
    waitingViews.set(server, new Set());
    window.camstreamEvents(function (kind, data) {
      if (kind !== "state" && kind !== "status") return;
      var camera = kind === "state" ? data.camera : data.name;
      var key = stateKey(server, camera), known = states.get(key) || {};
      // Reached: it streamed since the server started (a state's `reached`, a status's frames_captured).
      var reached = data.state === "streaming" || known.reached === true || (typeof data.reached === "boolean" ?
        data.reached : typeof data.frames_captured === "number" ? data.frames_captured > 0 : known.reached);
      var now = { state: data.state, reason: data.last_error || "", reached: reached };
      states.set(key, now);
      waitingViews.get(server).forEach(function (view) { if (view.camera === camera) view.cameraState(now); });
    }, server);
  }

  class CamstreamView extends HTMLElement {
    connectedCallback() {
      this.camera = this.getAttribute("camera") || "";
      this.server = new URL(this.getAttribute("server") || defaultServer, document.baseURI).href;
      this.token = this.getAttribute("token") || "";
      this.frames = 0;
      this.seeks = 0;
      this.paths = [];  // every way this view tried to play, in order ("video", "hls", "shared", "direct")
      this.pending = null;
      this.loading = false;
      this.showPlaceholder();
      if (!this.hasAttribute("video")) this.playMjpeg();
      else if (this.wantsWebRtc() && window.RTCPeerConnection) this.playWebRtc();
      else this.playOtherwise();
    }

    // WebRTC where the view asks for it (`webrtc`), or where the page's player setting says so.
    wantsWebRtc() {
      if (this.hasAttribute("webrtc")) return true;
      try { return window.localStorage.getItem(PLAYER_KEY) === "webrtc"; } catch (error) { return false; }
    }

    // The camera's own video by the first way this browser has that was not tried yet: MSE (or iOS's
    // ManagedMediaSource), WebRTC, the browser's own HLS; MJPEG last.
    playOtherwise() {
      var Source = window.MediaSource || window.ManagedMediaSource;
      if (Source && this.paths.indexOf("video") < 0) this.playVideo(Source);
      else if (window.RTCPeerConnection && this.paths.indexOf("webrtc") < 0) this.playWebRtc();
      else if (document.createElement("video").canPlayType("application/vnd.apple.mpegurl") &&
               this.paths.indexOf("hls") < 0) this.playHls();
      else this.playMjpeg();
    }

    // One of the server's URLs for this camera, with the view's token if it has one.
    urlOf(prefix, suffix) {
      var url = new URL(prefix + encodeURIComponent(this.camera) + (suffix || ""), this.server);
      if (this.token) url.searchParams.set("token", this.token);
      return url;
    }

    // Where the sound choice is kept: per server and camera, for every page of this site.
    soundKey() {
      return "camstream-sound:" + new URL(this.server).host + "/" + this.camera;
    }

    // Sound on or not: what this browser chose last for the camera, else the `sound` attribute; muted by default.
    wantsSound() {
      var stored = null;
      try { stored = window.localStorage.getItem(this.soundKey()); } catch (error) { /* storage off */ }
      return stored === null ? this.hasAttribute("sound") : stored === "on";
    }

    // The speaker button, for a camera whose stream carries audio; none for one without.
    showSoundControl(hasAudio) {
      this.hasAudio = hasAudio;
      if (!hasAudio) {
        if (this.soundButton) this.soundButton.remove();
        this.soundButton = null;
        return;
      }
      if (!this.soundButton) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "camstream-sound";
        button.dataset.action = "sound";
        // Styled here, so it looks the same embedded in a page without camstream's stylesheet.
        button.style.cssText = "position:absolute;right:8px;bottom:8px;z-index:2;display:grid;place-items:center;" +
          "width:36px;height:36px;padding:0;border:0;border-radius:50%;background:rgba(0,0,0,.6);color:#fff;" +
          "cursor:pointer";
        button.addEventListener("click", function () { this.setSound(this.img.muted); }.bind(this));
        if (!this.style.position) this.style.position = "relative";
        this.appendChild(button);
        this.soundButton = button;
      }
      this.showSound();
    }

    // The button says what is: sound on (pressed) or muted.
    showSound() {
      if (!this.soundButton || !this.img) return;
      var on = !this.img.muted;
      this.soundButton.setAttribute("aria-pressed", String(on));
      this.soundButton.setAttribute("aria-label", "sound of " + this.camera);
      this.soundButton.title = (on ? "mute " : "unmute ") + this.camera;
      this.soundButton.innerHTML = on ? SOUND_ON : SOUND_OFF;
    }

    // Sound on or off, as the viewer chose (a click: the browser allows sound then), remembered for the camera.
    setSound(on) {
      var video = this.img;
      if (!video || video.tagName !== "VIDEO") return;
      video.muted = !on;
      try { window.localStorage.setItem(this.soundKey(), on ? "on" : "off"); } catch (error) { /* storage off */ }
      if (video.paused) this.startPlaying(video);
      this.showSound();
    }

    // play(), and where the browser refuses sound without a click: muted, the button showing it so.
    startPlaying(video) {
      var view = this, started = video.play();
      if (!started) return;
      started.catch(function (error) {
        if (error.name !== "NotAllowedError" || video.muted || view.img !== video) return;
        video.muted = true;
        view.showSound();
        video.play().catch(noop);
      });
    }

    // A <video> for the camera's own video, muted unless sound is wanted, the placeholder laid over it.
    makeVideo(mode) {
      var video = document.createElement("video");
      video.muted = true;
      video.autoplay = true;
      video.playsInline = true;
      video.style.maxWidth = "100%";
      video.addEventListener("volumechange", this.showSound.bind(this));
      this.img = video;  // what shows the picture, for the boxes drawn over it
      this.insertBefore(video, this.firstChild);
      if (this.placeholder) {
        // Laid over the video, which must stay shown: a browser does not start a muted video it cannot see.
        if (!this.style.position) this.style.position = "relative";
        this.placeholder.style.position = "absolute";
        this.placeholder.style.inset = "0";
        this.placeholder.style.aspectRatio = "auto";
      }
      this.mode = mode;
      this.dataset.mode = mode;
      this.paths.push(mode);
      return video;
    }

    // Count each frame shown, while `alive()` says this video is still the view's.
    countFrames(video, alive) {
      if (!("requestVideoFrameCallback" in video)) return;
      var view = this;
      function counted() {
        view.frames += 1;
        view.dataset.frames = view.frames;
        if (alive()) video.requestVideoFrameCallback(counted);
      }
      video.requestVideoFrameCallback(counted);
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

    // Wait `video-timeout` seconds (10 by default) for the video to play, then `giveUp()`; sooner where the
    // camera's state says it is down (cameraState). Returns the timer.
    waitVideo(giveUp) {
      var view = this;
      this.giveUp = giveUp;
      var sameServer = new URL(this.server).origin === location.origin;
      if (sameServer && !this.token && "SharedWorker" in window && sharedWorker()) {
        followStates(this.server);
        waitingViews.get(this.server).add(this);
        var known = states.get(stateKey(this.server, this.camera));
        if (known) setTimeout(function () { view.cameraState(known); }, 0);
      }
      return setTimeout(giveUp, (Number(this.getAttribute("video-timeout")) || 10) * 1000);
    }

    // The camera's state changed (or is known) while this view waits for its first picture: down, the
    // placeholder says why at once and the video, if it waits for one, is given up (MJPEG, whose "no signal"
    // pictures say why too).
    cameraState(known) {
      if (known.state !== "reconnecting" && known.state !== "failed") return;
      if (!this.placeholder || !this.isConnected) return;
      var what = known.reached === false ? "not reached" : "no signal";
      this.placeholder.textContent = this.camera + ": " + what + (known.reason ? " \u2014 " + known.reason : "");
      this.placeholder.dataset.state = known.state;
      var giveUp = this.giveUp;
      this.giveUp = null;
      if (giveUp) giveUp();
    }

    // No longer waiting (the first picture is in, or the view is gone).
    doneWaiting() {
      this.giveUp = null;
      var waiting = waitingViews.get(this.server);
      if (waiting) waiting.delete(this);
    }

    // The first picture is in: the placeholder goes, the picture shows.
    firstPicture() {
      this.doneWaiting();
      if (this.placeholder) this.placeholder.remove();
      this.placeholder = null;
      if (this.img) this.img.style.display = "";
    }

    playMjpeg() {
      this.giveUp = null;  // no video to give up; the placeholder still says why until the first picture
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
      this.showSoundControl(false);
      var sameServer = new URL(this.server).origin === location.origin;
      // A view with its own token reads its own stream: the shared one is the session's.
      var worker = sameServer && !this.hasAttribute("direct") && !this.token && "SharedWorker" in window ? sharedWorker() : false;
      if (worker) {
        this.mode = "shared";
        worker.views.add(this);
        worker.port.postMessage({ type: "watch", base: this.server, camera: this.camera });
        this.img.addEventListener("load", this.shown.bind(this));
        this.img.addEventListener("error", this.shown.bind(this));
      } else {
        this.mode = "direct";
        this.img.addEventListener("load", function () { this.frames += 1; }.bind(this));
        this.img.src = this.urlOf("video_feed/").href;
      }
      this.dataset.mode = this.mode;
      this.paths.push(this.mode);
    }

    disconnectedCallback() {
      if (this.mode === "shared" && shared) {
        shared.views.delete(this);
        shared.port.postMessage({ type: "unwatch", camera: this.camera });
      }
      if (this.socket) this.socket.close();
      this.socket = null;
      if (this.stopWebRtc) this.stopWebRtc();
      this.stopWebRtc = null;
      clearTimeout(this.retry);
      this.doneWaiting();
      if (this.img) this.img.removeAttribute("src");
      if (this.img && this.img.tagName === "VIDEO") {
        this.img.srcObject = null;
        this.img.load();  // lets go of the stream at once
      }
    }

    // The camera's own video: a text message names its codecs, then the init segment and fragments follow.
    // `Source` is MediaSource, or ManagedMediaSource (iOS Safari 17.1+), which the browser may tell to pause.
    playVideo(Source) {
      var view = this, queue = [], buffer = null, source = null, playing = false, resting = false;
      var managed = Source !== window.MediaSource;
      var video = this.makeVideo("video");
      this.mediaSourceName = managed ? "ManagedMediaSource" : "MediaSource";
      var socket = new WebSocket(this.urlOf("mse/").href.replace(/^http/, "ws"));
      socket.binaryType = "arraybuffer";
      this.socket = socket;
      function current() { return view.socket === socket || resting && view.img === video; }

      // A camera that is down sends no stream: show its MJPEG, which says "no signal" and why.
      var waiting = this.waitVideo(fallBack);
      function fallBack() {
        clearTimeout(waiting);
        if (view.socket !== socket) return;
        view.socket = null;
        socket.close();
        video.remove();
        view.playMjpeg();
      }
      // Start over on a new connection (a new header, init segment and keyframe).
      function restart(delay) {
        view.socket = null;
        resting = false;
        socket.close();
        clearTimeout(view.retry);
        view.retry = setTimeout(function () {
          if (!view.isConnected) return;
          video.remove();
          view.playVideo(Source);
        }, delay);
      }
      function pump() {
        if (!buffer || buffer.updating || !queue.length || source.readyState !== "open") return;
        var data = joined(queue);
        queue = [];
        try {
          buffer.appendBuffer(data);
        } catch (error) {
          if (error.name !== "QuotaExceededError") { broken(); return; }
          // Full: drop what is behind the playing position and append again once that is done; if nothing
          // can go (a stalled player holding only what is ahead), start over from the live edge.
          queue = [data];
          if (!trim(0.5, 0)) restart(0);
        }
      }
      // Remove what is more than `keep` seconds behind the playing position, once more than `keep` + `slack`
      // is (not at every frame); true if something goes.
      function trim(keep, slack) {
        var ranges = buffer.buffered;
        if (!ranges.length || buffer.updating) return false;
        var until = video.currentTime - keep;
        if (until - slack <= ranges.start(0)) return false;
        buffer.remove(0, until);
        return true;
      }
      // The browser cannot take this stream after all: MJPEG before the first picture, else a new start.
      function broken() {
        if (!current()) return;
        if (!playing) fallBack();
        else restart(2000);
      }
      function seek(to) {
        view.seeks += 1;
        view.dataset.seeks = view.seeks;
        video.currentTime = to;
      }
      // Near the live edge, playing: into the newest range when not in one (the start, or a hole in the
      // stream), there when far behind (a hidden tab, a slow moment) or before the first picture (the server
      // starts from the last keyframe, up to a GOP back), a little faster when a little behind.
      function keepLive() {
        var ranges = video.buffered;
        if (!ranges.length) return;
        var last = ranges.length - 1, end = ranges.end(last), now = video.currentTime, at = rangeAt(ranges, now);
        var lag = end - now;
        // Before the first range (the start), in a hole between two, or coming to the end of one with more
        // after it: a frame or a piece of sound the camera never sent. Chromium plays on into such a hole with
        // the sound for up to 3 s, skipping the frames it missed: step over it before it gets there.
        var next = 0;
        while (next <= last && ranges.start(next) <= now) next += 1;
        var outside = at === -1 && next <= last;
        var stuck = at !== -1 && next <= last && now >= ranges.end(at) - HOLE_AHEAD;
        if (video.seeking) {
          // on its way to where the last seek sent it
        } else if ((outside || stuck) && ranges.start(next) - now < SEEK_AT) {
          seek(ranges.start(next));
        } else if (outside || stuck || lag > SEEK_AT || !playing && lag > NUDGE_AT) {
          seek(Math.max(ranges.start(last), end - LIVE_TARGET));
        } else if (lag > NUDGE_AT) {
          video.playbackRate = NUDGE_RATE;
        } else if (lag < LIVE_TARGET) {
          video.playbackRate = 1;
        }
        if (video.paused && video.readyState >= 2) view.startPlaying(video);
      }
      function updated() {
        if (!current()) return;
        keepLive();
        trim(KEEP_BEHIND, KEEP_BEHIND);
        pump();
      }
      function open(codecs) {
        queue = [];
        buffer = null;
        source = new Source();
        view.mediaSource = source;
        if (managed) {
          // ManagedMediaSource plays only with AirPlay off; Safari takes it as srcObject, others as a URL.
          video.disableRemotePlayback = true;
          try { video.srcObject = source; } catch (error) { video.src = URL.createObjectURL(source); }
          // The browser wants no more for now (enough buffered, or it saves power): close, and come back to
          // the live edge when it asks again.
          source.addEventListener("endstreaming", function () {
            if (view.socket !== socket) return;
            resting = true;
            view.socket = null;
            socket.close();
          });
          source.addEventListener("startstreaming", function () { if (resting) restart(0); });
        } else {
          video.src = URL.createObjectURL(source);
        }
        source.addEventListener("sourceopen", function () {
          if (video.src.startsWith("blob:")) URL.revokeObjectURL(video.src);
          try {
            buffer = source.addSourceBuffer(codecs);
            buffer.mode = "segments";  // each frame at its own time, as the camera stamped it
          } catch (error) {
            fallBack();
            return;
          }
          buffer.addEventListener("updateend", updated);
          pump();
        }, { once: true });
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
        if (!Source.isTypeSupported(header.codecs)) { fallBack(); return; }
        // A new stream (the first, or after the camera changed resolution or codec): a new MediaSource.
        var hasAudio = /mp4a|opus|ac-3|ec-3/.test(header.codecs);
        video.muted = !(hasAudio && view.wantsSound());
        view.showSoundControl(hasAudio);
        open(header.codecs);
      };
      video.addEventListener("playing", function () {
        if (!playing) view.countFrames(video, current);
        playing = true;
        view.firstPicture();
      });
      video.addEventListener("error", broken);
      video.addEventListener("waiting", function () { if (current() && buffer) keepLive(); });
      socket.onclose = function () {
        if (view.socket !== socket) return;
        if (!playing) { fallBack(); return; }
        restart(2000);  // the server went away or restarted: try again in a moment
      };
    }

    // A <video> the browser plays by itself (WebRTC, native HLS): its sound control once its tracks are known
    // (`hasAudio()`), then, as it plays, the picture and the frames counted (`started()` says if for the first time).
    followVideo(video, current, hasAudio, started) {
      var view = this;
      video.addEventListener("loadedmetadata", function () {
        var audio = hasAudio();
        video.muted = !(audio && view.wantsSound());
        view.showSoundControl(audio);
        view.startPlaying(video);
      });
      video.addEventListener("playing", function () {
        if (started()) view.countFrames(video, current);
        view.firstPicture();
      });
    }

    // The camera over WebRTC (WHEP, camstream-webrtc.js): its own H.264 a fraction of a second behind, its sound
    // as Opus. One that never plays (no route for UDP, a server without WebRTC) falls back to the next way.
    playWebRtc() {
      var view = this, playing = false;
      var video = this.makeVideo("webrtc");
      function current() { return view.img === video; }
      function fallBack() {
        clearTimeout(waiting);
        if (!current()) return;
        view.stopWebRtc();
        video.srcObject = null;
        video.remove();
        view.playOtherwise();
      }
      var waiting = this.waitVideo(function () { if (!playing) fallBack(); });
      this.stopWebRtc = noop;
      this.followVideo(video, current, function () {
        var stream = video.srcObject;
        return Boolean(stream && stream.getAudioTracks().length);
      }, function () {
        clearTimeout(waiting);
        var first = !playing;
        playing = true;
        return first;
      });
      loadWebRtc().then(function () {
        if (!current() || !view.isConnected) return;
        view.stopWebRtc = window.camstreamWebRtc(video, view.camera, { server: view.server, token: view.token,
                                                                       onerror: fallBack });
      }, fallBack);
    }

    // The browser's own HLS (Safari on an iPhone before 17.1): it keeps to the live edge by itself.
    playHls() {
      var view = this, playing = false;
      var video = this.makeVideo("hls");
      function current() { return view.img === video; }
      // Nothing played: MJPEG. It stopped after playing (the server restarted, a long network break): again.
      function fallBack() {
        clearTimeout(waiting);
        if (!current()) return;
        video.removeAttribute("src");
        video.load();
        if (playing) {
          clearTimeout(view.retry);
          view.retry = setTimeout(function () {
            if (!view.isConnected || !current()) return;
            video.remove();
            view.playHls();
          }, 2000);
          return;
        }
        video.remove();
        view.playMjpeg();
      }
      var waiting = this.waitVideo(function () { if (!playing) fallBack(); });
      video.addEventListener("error", fallBack);
      video.addEventListener("ended", fallBack);
      this.followVideo(video, current, function () {
        var tracks = video.audioTracks;
        return Boolean(tracks && tracks.length) || Boolean(video.mozHasAudio);
      }, function () {
        clearTimeout(waiting);
        var first = !playing;
        playing = true;
        return first;
      });
      video.src = this.urlOf("hls/", "/index.m3u8").href;
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
