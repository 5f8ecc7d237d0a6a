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
// The offer goes at once; the browser's ICE candidates follow as it finds
// them (trickle ICE: PATCH on the session with an
// application/trickle-ice-sdpfrag fragment), so a STUN or TURN server that
// is slow to answer does not hold the picture back. Leaving the page ends
// the session.
(function () {
  "use strict";

  var script = document.currentScript;
  var defaultServer = new URL("..", new URL(".", script ? script.src : document.baseURI)).href;
  function csrfHeaders() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta && meta.content ? { "X-CSRF-Token": meta.content } : {};
  }

  // The lines of an SDP fragment (RFC 8840) that carry ``lines`` (candidates, or the end of them) for ``sdp``'s
  // ICE credentials and first media, which every other media is bundled on.
  function fragment(sdp, lines) {
    function line(prefix) {
      var found = sdp.split(/\r?\n/).filter(function (each) { return each.indexOf(prefix) === 0; });
      return found.length ? found[0] : null;
    }
    var head = [line("a=ice-ufrag:"), line("a=ice-pwd:"), "m=video 9 UDP/TLS/RTP/SAVPF 0", line("a=mid:")];
    return head.filter(Boolean).concat(lines).join("\r\n") + "\r\n";
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
    var waiting = [], patching = Promise.resolve();

    // Candidates found before the session's URL is known wait for it; then each goes in a PATCH, in order.
    function trickle(lines) {
      waiting = waiting.concat(lines);
      if (!session || !waiting.length || stopped) return;
      var body = fragment(pc.localDescription.sdp, waiting), url = session;
      waiting = [];
      patching = patching.then(function () {
        var headers = csrfHeaders();
        headers["Content-Type"] = "application/trickle-ice-sdpfrag";
        return fetch(url, { method: "PATCH", headers: headers, body: body, credentials: credentials });
      }).catch(function () {});  // the answer's candidates and the checks they bring connect it anyway
    }

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
        pc.addEventListener("icecandidate", function (event) {
          if (event.candidate && event.candidate.candidate) trickle(["a=" + event.candidate.candidate]);
          else if (!event.candidate) trickle(["a=end-of-candidates"]);
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
            }).then(function () { trickle([]); });
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
