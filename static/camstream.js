// The page: each tile's state and numbers from the status API every 2 s,
// full screen, and the embed code for a camera.
(function () {
  "use strict";

  function describe(camera) {
    var parts = [camera.measured_fps.toFixed(1) + " fps",
                 camera.viewers + " viewer" + (camera.viewers === 1 ? "" : "s")];
    if (camera.width) parts.push(camera.width + "\u00d7" + camera.height);
    return parts.join(" \u00b7 ");
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

  document.querySelectorAll(".tile").forEach(function (tile) {
    tile.querySelectorAll("button[hidden]").forEach(function (button) { button.hidden = false; });
    tile.querySelector('[data-action="fullscreen"]').addEventListener("click", function () {
      if (document.fullscreenElement) document.exitFullscreen();
      else tile.requestFullscreen();
    });
    var embed = tile.querySelector('[data-action="embed"]');
    embed.addEventListener("click", function () { copyEmbed(tile, embed); });
  });

  poll();
})();
