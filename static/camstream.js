// Refreshes each tile's state and numbers from the status API every 2 s.
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

  poll();
})();
