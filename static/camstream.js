// The page: each tile's state and numbers, and the live boxes of its
// detector, from the server's pushed events; full screen, the embed code
// for a camera, and running its detector now.
(function () {
  "use strict";

  // The session ended (a week after signing in, or signed out in another tab): the server shows its login form.
  document.addEventListener("camstream-signed-out", function () { window.location.reload(); });

  // What plays in a tile, as its view says (data-mode).
  var PATHS = { video: "MSE", webrtc: "WebRTC", hls: "HLS", shared: "MJPEG", direct: "MJPEG" };

  function describe(camera, view) {
    var parts = [camera.measured_fps.toFixed(1) + " fps",
                 camera.viewers + " viewer" + (camera.viewers === 1 ? "" : "s")];
    if (camera.width) parts.push(camera.width + "\u00d7" + camera.height);
    if (view && PATHS[view.dataset.mode]) parts.push(PATHS[view.dataset.mode]);
    return parts.join(" \u00b7 ");
  }

  // The page's player for cameras whose own video plays: MSE (the default) or WebRTC, kept by the browser;
  // camstream-view.js reads it as each view starts, so a change takes a reload.
  var player = document.querySelector('[data-action="player"]');
  if (player) {
    try { player.value = window.localStorage.getItem("camstream-player") || "mse"; } catch (error) { /* off */ }
    player.addEventListener("change", function () {
      try { window.localStorage.setItem("camstream-player", player.value); } catch (error) { return; }
      window.location.reload();
    });
  }

  function describeDetection(detection) {
    var text = detection.detector + ": " + detection.state;
    if (detection.state === "running") text += " \u00b7 " + detection.results_per_second.toFixed(1) + "/s";
    if (detection.state !== "running" && detection.last_error) text += " (" + detection.last_error + ")";
    return text;
  }

  // A tile's state and, while the camera is in trouble, why. A camera that has never sent a picture (since
  // the server started, by its status's frames_captured) is not "reconnecting" to anything: its tile says
  // "unreachable" and the reason from the first failed attempt, not a wait for a camera that never came.
  // The label's class stays the state itself.
  function showState(tile, state, error, reached) {
    if (state === "streaming" || reached) tile.dataset.reached = "true";
    var troubled = state === "failed" || state === "reconnecting";
    var label = state === "starting" ? "connecting" : state;
    if (state === "reconnecting" && tile.dataset.reached !== "true") label = "unreachable";
    var field = tile.querySelector('[data-field="state"]');
    field.textContent = label;
    field.className = "state " + state;
    var text = troubled && error || "";
    tile.querySelector('[data-field="error"]').textContent = text;
    tile.querySelector('[data-field="error"]').title = text;
  }

  function update(cameras) {
    cameras.forEach(function (camera) {
      var tile = document.querySelector('[data-camera="' + CSS.escape(camera.name) + '"]');
      if (!tile) return;
      showState(tile, camera.state, camera.last_error, camera.frames_captured > 0);
      tile.querySelector('[data-field="stats"]').textContent = describe(camera, tile.querySelector("camstream-view"));
      var detection = tile.querySelector('[data-field="detection"]');
      if (detection && camera.detection) detection.textContent = describeDetection(camera.detection);
      var recording = tile.querySelector('[data-field="recording"]');
      if (recording && camera.recording) {
        recording.textContent = camera.recording.state === "paused"
          ? "recording paused: " + camera.recording.reason : camera.recording.mode + " recording";
        recording.className = "recording " + camera.recording.state;
      }
    });
  }

  function percent(score) { return Math.round(score * 100) + "%"; }

  // Boxes older than this are not drawn.
  var BOX_SECONDS = 1.5;
  var results = new Map();  // camera -> {result, at}

  function tileOf(name) { return document.querySelector('[data-camera="' + CSS.escape(name) + '"]'); }

  // Where the picture is inside the <img> (object-fit: contain), in CSS pixels relative to the view.
  function pictureRect(view, width, height) {
    var box = view.img.getBoundingClientRect(), outer = view.getBoundingClientRect();
    var scale = Math.min(box.width / width, box.height / height);
    return { x: box.left - outer.left + (box.width - width * scale) / 2,
             y: box.top - outer.top + (box.height - height * scale) / 2, scale: scale };
  }

  // A pose model's skeleton (COCO's 17 keypoints, as camera/detect/pose.py draws it): which points a line joins,
  // and the score below which a point is not drawn.
  var SKELETON = [[15, 13], [13, 11], [16, 14], [14, 12], [11, 12], [5, 11], [6, 12], [5, 6], [5, 7], [6, 8],
                  [7, 9], [8, 10], [1, 2], [0, 1], [0, 2], [1, 3], [2, 4], [3, 5], [4, 6]];
  var VISIBLE = 0.5;

  // The skeleton of a detection with 17 keypoints (in the result's pixels, as its box); whether one was drawn.
  function drawSkeleton(context, rect, detection) {
    var points = detection.extra && detection.extra.keypoints;
    if (!Array.isArray(points) || points.length !== 17) return false;
    var seen = points.map(function (p) {
      return (p.length < 3 || p[2] >= VISIBLE) ? [rect.x + p[0] * rect.scale, rect.y + p[1] * rect.scale] : null;
    });
    context.strokeStyle = "#fff";
    context.beginPath();
    SKELETON.forEach(function (pair) {
      var a = seen[pair[0]], b = seen[pair[1]];
      if (!a || !b) return;
      context.moveTo(a[0], a[1]);
      context.lineTo(b[0], b[1]);
    });
    context.stroke();
    context.fillStyle = "#00c8ff";
    seen.forEach(function (p) {
      if (!p) return;
      context.beginPath();
      context.arc(p[0], p[1], 3, 0, 2 * Math.PI);
      context.fill();
    });
    return true;
  }

  function drawBoxes(name) {
    var tile = tileOf(name), canvas = tile && tile.querySelector('[data-field="boxes"]');
    if (!canvas) return;
    var view = tile.querySelector("camstream-view"), entry = results.get(name);
    var on = tile.querySelector('[data-action="boxes"]').getAttribute("aria-pressed") === "true";
    var fresh = entry && performance.now() - entry.at < BOX_SECONDS * 1000;
    var ratio = window.devicePixelRatio || 1, bounds = view.getBoundingClientRect();
    canvas.width = Math.round(bounds.width * ratio);
    canvas.height = Math.round(bounds.height * ratio);
    var context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    // The <img> keeps its box while a new frame decodes, so boxes need not wait for it (no flicker).
    // Nothing over a view still waiting for its first picture: there is no picture to place the boxes on.
    var drawn = on && fresh && !view.placeholder ? entry.result.detections : [];
    canvas.hidden = !drawn.length;
    canvas.dataset.boxes = JSON.stringify(drawn.map(function (d) { return d.box; }));
    canvas.dataset.seq = drawn.length ? entry.result.seq : "";
    canvas.dataset.skeletons = "0";
    if (!drawn.length) return;
    var rect = pictureRect(view, entry.result.width, entry.result.height);
    context.scale(ratio, ratio);
    context.lineWidth = 2;
    context.font = "12px system-ui, sans-serif";
    var skeletons = 0;
    drawn.forEach(function (detection) {
      var x = rect.x + detection.box[0] * rect.scale, y = rect.y + detection.box[1] * rect.scale;
      var text = detection.label + " " + percent(detection.score);
      context.strokeStyle = context.fillStyle = "#ffb21d";
      context.strokeRect(x, y, detection.box[2] * rect.scale, detection.box[3] * rect.scale);
      context.fillRect(x, Math.max(0, y - 16), context.measureText(text).width + 6, 16);
      context.fillStyle = "#000";
      context.fillText(text, x + 3, Math.max(12, y - 4));
      if (drawSkeleton(context, rect, detection)) skeletons += 1;
    });
    canvas.dataset.skeletons = skeletons;
  }

  function detected(result) {
    results.set(result.camera, { result: result, at: performance.now() });
    var tile = tileOf(result.camera), labels = tile && tile.querySelector('[data-field="labels"]');
    if (labels) {
      labels.textContent = result.detections.map(function (d) { return d.label + " " + percent(d.score); })
        .join(", ");
    }
    drawBoxes(result.camera);
  }

  function stateChanged(change) {
    var tile = tileOf(change.camera);
    if (!tile) return;
    showState(tile, change.state, change.last_error, false);
  }

  function listen() {
    window.camstreamEvents(function (kind, data) {
      if (kind === "status") update([data]);
      else if (kind === "state") stateChanged(data);
      else if (kind === "detection") detected(data);
    });
    // Stale boxes disappear even when no new result comes.
    setInterval(function () { results.forEach(function (_, name) { drawBoxes(name); }); }, 500);
  }

  function copyEmbed(tile, button) {
    var code = '<img src="' + tile.dataset.embedUrl + '" alt="' + tile.dataset.camera + '">';
    var done = function () {
      button.textContent = "copied";
      setTimeout(function () { button.textContent = "copy embed code"; }, 1500);
    };
    // The clipboard API needs a secure context; on plain http from the LAN, offer the text instead.
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(code).then(done, function () { window.prompt("Embed code", code); });
    } else {
      window.prompt("Embed code", code);
    }
  }


  function showResult(tile, result) {
    var panel = tile.querySelector('[data-field="detect-result"]');
    var name = tile.dataset.camera;
    panel.querySelector("img").src = "snapshot/" + encodeURIComponent(name) + ".jpg?overlay=1&seq=" + result.seq;
    var count = result.detections.length;
    panel.querySelector('[data-field="detect-summary"]').textContent =
      (count ? count + " found" : "nothing found") + " in " + result.inference_ms.toFixed(0) + " ms";
    var list = panel.querySelector('[data-field="detect-list"]');
    list.replaceChildren.apply(list, result.detections.map(function (detection) {
      var item = document.createElement("li");
      item.textContent = detection.label + " " + percent(detection.score) + " at " + detection.box.join(", ");
      return item;
    }));
    var link = panel.querySelector('[data-field="detect-json"]');
    if (link.dataset.url) URL.revokeObjectURL(link.dataset.url);
    link.dataset.url = URL.createObjectURL(new Blob([JSON.stringify(result, null, 2)], { type: "application/json" }));
    link.href = link.dataset.url;
    link.download = name + "-" + result.seq + ".json";
    link.hidden = false;
    panel.hidden = false;
  }

  function showFailure(tile, message) {
    var panel = tile.querySelector('[data-field="detect-result"]');
    panel.querySelector("img").removeAttribute("src");
    panel.querySelector('[data-field="detect-summary"]').textContent = message;
    panel.querySelector('[data-field="detect-list"]').replaceChildren();
    panel.querySelector('[data-field="detect-json"]').hidden = true;
    panel.hidden = false;
  }

  function detect(tile, button) {
    button.disabled = true;
    button.textContent = "detecting\u2026";
    var csrf = document.querySelector('meta[name="csrf-token"]').content;
    fetch("api/cameras/" + encodeURIComponent(tile.dataset.camera) + "/detect",
          { method: "POST", headers: { "X-CSRF-Token": csrf } })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) throw new Error(body.error || "detection failed");
          showResult(tile, body);
        });
      })
      .catch(function (error) { showFailure(tile, error.message); })
      .finally(function () {
        button.disabled = false;
        button.textContent = "detect";
      });
  }

  document.querySelectorAll(".tile").forEach(function (tile) {
    tile.querySelectorAll("button[hidden]").forEach(function (button) { button.hidden = false; });
    tile.querySelector('[data-action="fullscreen"]').addEventListener("click", function () {
      if (document.fullscreenElement) document.exitFullscreen();
      else tile.requestFullscreen();
    });
    var embed = tile.querySelector('[data-action="embed"]');
    embed.addEventListener("click", function () { copyEmbed(tile, embed); });
    var boxesButton = tile.querySelector('[data-action="boxes"]');
    if (boxesButton) {
      boxesButton.addEventListener("click", function () {
        var on = boxesButton.getAttribute("aria-pressed") !== "true";
        boxesButton.setAttribute("aria-pressed", String(on));
        drawBoxes(tile.dataset.camera);
      });
    }
    var detectButton = tile.querySelector('[data-action="detect"]');
    if (detectButton) {
      detectButton.addEventListener("click", function () { detect(tile, detectButton); });
      tile.querySelector('[data-action="close-detect"]').addEventListener("click", function () {
        tile.querySelector('[data-field="detect-result"]').hidden = true;
      });
    }
  });

  listen();
})();
