// camstreamWebRtc(video, camera, options) -> stop()
//
// Plays one camstream camera into a <video> over WebRTC, through WHEP
// (POST /whep/<camera> with an SDP offer; DELETE on the session's URL ends
// it). The camera's own H.264 arrives as it came, its sound as Opus. The
// STUN and TURN servers come from the server (/api/webrtc), so a phone
// outside the LAN can reach it through a TURN server. Returns a function
// that stops playing and ends the session; call it once the video goes.
//
// options: server (camstream's URL, default the server this script came
// from), token (a read-only token, sent with every request), onerror(error)
// (the session failed or was refused: error.status is the HTTP status, if
// any), onstate(state) (the peer connection's state: "connected", ...).
// ICE candidates all go in the offer (camstream takes no trickle ICE): the
// offer waits for gathering to end, GATHER_MS at most. Leaving the page ends the session.
(function () {
  "use strict";

  var script = document.currentScript;
  var defaultServer = new URL("..", new URL(".", script ? script.src : document.baseURI)).href;
  var GATHER_MS = 3000;

  function csrfHeaders() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta && meta.content ? { "X-CSRF-Token": meta.content } : {};
  }

  function gathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise(function (resolve) {
      var timer = setTimeout(resolve, GATHER_MS);
      pc.addEventListener("icegatheringstatechange", function () {
        if (pc.iceGatheringState === "complete") {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  function refused(response) {
    return response.json().catch(function () { return {}; }).then(function (body) {
      var error = new Error(body.error || "HTTP " + response.status);
      error.status = response.status;
      throw error;
    });
  }

  function camstreamWebRtc(video, camera, options) {
    options = options || {};
    var server = new URL(options.server || defaultServer, document.baseURI).href;
    if (server.charAt(server.length - 1) !== "/") server += "/";
    var query = options.token ? "?token=" + encodeURIComponent(options.token) : "";
    var credentials = options.server ? "include" : "same-origin";
    var pc = null, session = null, stopped = false;

    function end() {
      if (session) {
        fetch(session, { method: "DELETE", headers: csrfHeaders(), credentials: credentials, keepalive: true })
          .catch(function () {});
        session = null;
      }
    }

    function stop() {
      if (stopped) return;
      stopped = true;
      window.removeEventListener("pagehide", stop);
      if (pc) pc.close();
      end();
    }

    // A tab that closes or navigates away ends its session at once (else the server notices within 30 s, when
    // ICE consent runs out).
    window.addEventListener("pagehide", stop);

    fetch(server + "api/webrtc" + query, { credentials: credentials })
      .then(function (response) { return response.ok ? response.json() : { ice_servers: [] }; })
      .then(function (settings) {
        if (stopped) return null;
        pc = new RTCPeerConnection({ iceServers: settings.ice_servers || [] });
        pc.addTransceiver("video", { direction: "recvonly" });
        pc.addTransceiver("audio", { direction: "recvonly" });
        var stream = new MediaStream();
        pc.addEventListener("track", function (event) {
          stream.addTrack(event.track);
          if (video.srcObject !== stream) video.srcObject = stream;
          var playing = video.play();
          if (playing) playing.catch(function () {});
        });
        pc.addEventListener("connectionstatechange", function () {
          if (options.onstate) options.onstate(pc.connectionState);
          if (pc.connectionState === "failed" && !stopped) {
            if (options.onerror) options.onerror(new Error("the WebRTC connection failed"));
            stop();
          }
        });
        return pc.createOffer()
          .then(function (offer) { return pc.setLocalDescription(offer); })
          .then(function () { return gathered(pc); })
          .then(function () {
            var headers = csrfHeaders();
            headers["Content-Type"] = "application/sdp";
            return fetch(server + "whep/" + encodeURIComponent(camera) + query,
              { method: "POST", headers: headers, body: pc.localDescription.sdp, credentials: credentials });
          })
          .then(function (response) {
            if (response.status !== 201) return refused(response);
            session = new URL(response.headers.get("Location"), response.url).href;
            if (stopped) {
              end();
              return null;
            }
            return response.text().then(function (answer) {
              return pc.setRemoteDescription({ type: "answer", sdp: answer });
            });
          });
      })
      .catch(function (error) {
        if (stopped) return;
        if (options.onerror) options.onerror(error);
        stop();
      });

    stop.peerConnection = function () { return pc; };
    return stop;
  }

  window.camstreamWebRtc = camstreamWebRtc;
})();
