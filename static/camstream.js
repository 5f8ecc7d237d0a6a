// The page: each tile's state and numbers from the status API every 2 s,
// full screen, the embed code for a camera, and running its detector.
(function () {
  "use strict";

  function describe(camera) {
    var parts = [camera.measured_fps.toFixed(1) + " fps",
                 camera.viewers + " viewer" + (camera.viewers === 1 ? "" : "s")];
    if (camera.width) parts.push(camera.width + "\u00d7" + camera.height);
    return parts.join(" \u00b7 ");
  }

  function describeDetection(detection) {
    var text = detection.detector + ": " + detection.state;
    if (detection.state === "running") text += " \u00b7 " + detection.results_per_second.toFixed(1) + "/s";
    if (detection.state !== "running" && detection.last_error) text += " (" + detection.last_error + ")";
    return text;
  }

  function update(cameras) {
    cameras.forEach(function (camera) {
      var tile = document.querySelector('[data-camera="' + CSS.escape(camera.name) + '"]');
      if (!tile) return;
      var state = tile.querySelector('[data-field="state"]');
      state.textContent = camera.state;
      state.className = "state " + camera.state;
      tile.querySelector('[data-field="stats"]').textContent = describe(camera);
      var troubled = camera.state === "failed" || camera.state === "reconnecting";
      tile.querySelector('[data-field="error"]').textContent = troubled && camera.last_error || "";
      var detection = tile.querySelector('[data-field="detection"]');
      if (detection && camera.detection) detection.textContent = describeDetection(camera.detection);
    });
  }

  function poll() {
    fetch("api/cameras", { cache: "no-store" })
      .then(function (response) { return response.json(); })
      .then(function (body) { update(body.cameras); })
      .catch(function () { /* the server may be restarting; try again next tick */ })
      .finally(function () { setTimeout(poll, 2000); });
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

  function percent(score) { return Math.round(score * 100) + "%"; }

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
    fetch("api/cameras/" + encodeURIComponent(tile.dataset.camera) + "/detect", { method: "POST" })
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
    var detectButton = tile.querySelector('[data-action="detect"]');
    if (detectButton) {
      detectButton.addEventListener("click", function () { detect(tile, detectButton); });
      tile.querySelector('[data-action="close-detect"]').addEventListener("click", function () {
        tile.querySelector('[data-field="detect-result"]').hidden = true;
      });
    }
  });

  poll();
})();
