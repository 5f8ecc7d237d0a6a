// The events page: events with their snapshot, labels and times, filtered by camera and label,
// a player for a clip, and for continuous recording a timeline (the last hour, day or week) to play from.
// New and ended events arrive on the server's pushed events and refresh the list.
(function () {
  "use strict";

  var DAY = 86400;
  var main = document.querySelector(".history");
  var cameraSelect = main.querySelector('[data-field="camera"]');
  var labelSelect = main.querySelector('[data-field="label"]');
  var list = main.querySelector('[data-field="events"]');
  var player = main.querySelector('[data-field="player"]');
  var video = player.querySelector("video"), still = player.querySelector("img");
  var caption = player.querySelector('[data-field="caption"]');
  var preparing = player.querySelector('[data-field="preparing"]');
  var zoomSelect = main.querySelector('[data-field="zoom"]');
  var waitTimer = null;
  var continuous = main.dataset.continuous ? main.dataset.continuous.split(",") : [];
  var labelsSeen = new Set();
  var admin = main.dataset.admin === "true";
  var csrf = document.querySelector('meta[name="csrf-token"]').content;

  function percent(score) { return Math.round(score * 100) + "%"; }
  function when(seconds) { return new Date(seconds * 1000).toLocaleString(); }
  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { node.setAttribute(name, attributes[name]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function query() {
    var params = new URLSearchParams({ limit: "200" });
    if (cameraSelect.value) params.set("camera", cameraSelect.value);
    if (labelSelect.value) params.set("label", labelSelect.value);
    return params;
  }

  function describe(event) {
    return Object.keys(event.labels).map(function (label) { return label + " " + percent(event.labels[label]); })
      .join(", ");
  }

  function render(events) {
    list.replaceChildren.apply(list, events.map(function (event) {
      var item = element("li", { "data-event": event.id });
      item.appendChild(element("img", { src: event.snapshot + "?boxes=1", loading: "lazy",
                                        alt: "what camera " + event.camera + " saw" }));
      var about = element("div", { "class": "about" });
      about.appendChild(element("strong", {}, event.camera));
      about.appendChild(element("span", { "class": "labels" }, describe(event)));
      about.appendChild(element("time", { datetime: new Date(event.start * 1000).toISOString() },
                                when(event.start) + (event.end === null ? "" :
                                  " \u00b7 " + Math.max(1, Math.round(event.end - event.start)) + " s")));
      if (event.end === null) about.appendChild(element("span", { "class": "ongoing" }, "going on"));
      if (event.continues) about.appendChild(element("span", { "class": "continues" }, "goes on from #" + event.continues));
      // The actions stay together on one line, at the end of the card.
      var actions = element("span", { "class": "card-actions" });
      var play = element("button", { type: "button", "data-action": "play" }, "play");
      play.addEventListener("click", function () { playClip(event); });
      actions.appendChild(play);
      actions.appendChild(element("a", { href: event.clip, download: event.camera + "-event-" + event.id + ".mp4" },
                                  "download"));
      if (event.end !== null && admin) {
        var remove = element("button", { type: "button", "data-action": "delete" }, "delete");
        remove.addEventListener("click", function () { deleteEvent(event, item); });
        actions.appendChild(remove);
      }
      about.appendChild(actions);
      item.appendChild(about);
      return item;
    }));
    main.querySelector('[data-field="empty"]').hidden = events.length > 0;
    main.querySelector('[data-field="count"]').textContent = events.length + " event" + (events.length === 1 ? "" : "s");
  }

  function rememberLabels(events) {
    events.forEach(function (event) { Object.keys(event.labels).forEach(function (label) { labelsSeen.add(label); }); });
    var chosen = labelSelect.value;
    var options = [element("option", { value: "" }, "any")].concat(Array.from(labelsSeen).sort().map(function (label) {
      return element("option", { value: label }, label);
    }));
    labelSelect.replaceChildren.apply(labelSelect, options);
    labelSelect.value = chosen;
  }

  function load() {
    return fetch("api/events?" + query()).then(function (response) { return response.json(); })
      .then(function (body) {
        if (!body.events) throw new Error(body.error || "no events");
        if (!labelSelect.value) rememberLabels(body.events);
        render(body.events);
      }).catch(function (error) {
        main.querySelector('[data-field="count"]').textContent = "cannot load events: " + error.message;
      });
  }

  // A clip is made on its first request (its frames put into an MP4): say so, and for how long, until it plays.
  function playClip(event) {
    still.hidden = true;
    still.removeAttribute("src");
    video.hidden = false;
    video.src = event.clip + (event.end === null ? "?t=" + Date.now() : "");
    caption.textContent = event.camera + " \u00b7 " + describe(event) + " \u00b7 " + when(event.start);
    player.hidden = false;
    var length = event.clip_end === null ? null : Math.round(event.clip_end - event.clip_start);
    var started = Date.now();
    function tell() {
      var waited = Math.round((Date.now() - started) / 1000);
      preparing.textContent = "preparing the clip" + (length === null ? "" : " of " + length + " s") +
        "\u2026 " + waited + " s";
    }
    stopWaiting();
    preparing.hidden = false;
    tell();
    waitTimer = setInterval(tell, 1000);
    video.play().catch(function () {});
  }

  function stopWaiting() {
    if (waitTimer !== null) clearInterval(waitTimer);
    waitTimer = null;
    preparing.hidden = true;
  }
  video.addEventListener("playing", stopWaiting);
  video.addEventListener("canplay", stopWaiting);
  video.addEventListener("error", function () {
    if (!video.getAttribute("src")) return;
    stopWaiting();
    preparing.hidden = false;
    preparing.textContent = "the clip could not be played";
  });

  function playRecording(camera, start) {
    stopWaiting();
    video.pause();
    video.hidden = true;
    video.removeAttribute("src");
    still.hidden = false;
    still.src = "playback/" + encodeURIComponent(camera) + "?start=" + start.toFixed(3);
    caption.textContent = camera + " from " + when(start);
    player.hidden = false;
  }

  function closePlayer() {
    stopWaiting();
    video.pause();
    video.removeAttribute("src");
    still.removeAttribute("src");
    player.hidden = true;
  }

  function deleteEvent(event, item) {
    if (!window.confirm("Delete this event, its snapshot and its clip?")) return;
    fetch("api/events/" + event.id, { method: "DELETE", headers: { "X-CSRF-Token": csrf } }).then(function (response) {
      if (response.ok) item.remove();
    });
  }

  // How much of the past a timeline shows, and where its ticks go (seconds).
  var ZOOMS = { hour: { span: 3600, tick: 600, name: "the last hour" },
                day: { span: DAY, tick: 6 * 3600, name: "the last 24 hours" },
                week: { span: 7 * DAY, tick: DAY, name: "the last 7 days" } };

  function tickLabel(seconds, zoom) {
    var date = new Date(seconds * 1000);
    return zoom === "week" ? date.toLocaleDateString([], { weekday: "short", day: "numeric" })
      : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // A camera's continuous recording over the chosen span as a bar; a click plays from that moment. Every
  // recording and event is drawn at least a few pixels wide, so a short one shows at any zoom.
  function timeline(camera) {
    var zoom = ZOOMS[zoomSelect.value] ? zoomSelect.value : "day";
    var span = ZOOMS[zoom].span;
    var end = Date.now() / 1000, start = end - span;
    var section = element("div", { "data-timeline": camera, "data-zoom": zoom });
    section.appendChild(element("h2", {}, camera + ": " + ZOOMS[zoom].name));
    var bar = element("div", { "class": "bar", title: "click to play from there" });
    var ticks = element("div", { "class": "ticks" });
    var count = Math.round(span / ZOOMS[zoom].tick);
    for (var index = 0; index <= count; index += 1) {
      var at = start + index * ZOOMS[zoom].tick;
      var tick = element("span", {}, tickLabel(at, zoom));
      tick.style.left = (index / count * 100) + "%";
      ticks.appendChild(tick);
    }
    section.appendChild(bar);
    section.appendChild(ticks);
    bar.addEventListener("click", function (click) {
      var box = bar.getBoundingClientRect();
      playRecording(camera, start + (click.clientX - box.left) / box.width * span);
    });
    function place(node, from, to) {
      node.style.left = Math.max(0, (from - start) / span * 100) + "%";
      node.style.width = Math.max(0, (Math.min(to, end) - Math.max(from, start)) / span * 100) + "%";
      bar.appendChild(node);
    }
    var params = new URLSearchParams({ camera: camera, start: start.toFixed(0), limit: "10000" });
    fetch("api/recordings?" + params).then(function (response) { return response.json(); }).then(function (body) {
      (body.recordings || []).forEach(function (segment) { place(element("span", {}), segment.start, segment.end); });
    });
    fetch("api/events?" + new URLSearchParams({ camera: camera, after: start.toFixed(0), limit: "1000" }))
      .then(function (response) { return response.json(); }).then(function (body) {
        (body.events || []).forEach(function (event) {
          place(element("span", { "class": "event" }), event.start, event.end || end);
        });
      });
    return section;
  }

  function showTimelines() {
    var holder = main.querySelector('[data-field="timelines"]');
    var cameras = continuous.filter(function (camera) { return !cameraSelect.value || camera === cameraSelect.value; });
    holder.replaceChildren.apply(holder, cameras.map(timeline));
  }

  cameraSelect.addEventListener("change", function () {
    var url = new URL(window.location.href);
    if (cameraSelect.value) url.searchParams.set("camera", cameraSelect.value);
    else url.searchParams.delete("camera");
    window.history.replaceState(null, "", url);
    load();
    showTimelines();
  });
  labelSelect.addEventListener("change", load);
  zoomSelect.addEventListener("change", showTimelines);
  player.querySelector('[data-action="close-player"]').addEventListener("click", closePlayer);

  if (window.EventSource) {
    var source = new EventSource("events");
    var refresh = function () { load(); };
    source.addEventListener("event_start", refresh);
    source.addEventListener("event_end", refresh);
  }
  // A hub's peer cameras are not among the page's recorders: added from /api/cameras, with a timeline for
  // each that has recordings (the peer's, listed through the hub).
  function addPeerCameras() {
    fetch("api/cameras").then(function (response) { return response.json(); }).then(function (body) {
      var peers = (body.cameras || []).filter(function (camera) {
        return camera.peer && !cameraSelect.querySelector('option[value="' + CSS.escape(camera.name) + '"]');
      });
      peers.forEach(function (camera) { cameraSelect.appendChild(element("option", { value: camera.name }, camera.name)); });
      if (main.dataset.camera && !cameraSelect.value) {
        cameraSelect.value = main.dataset.camera;
        if (cameraSelect.value) load();
      }
      peers.forEach(function (camera) {
        fetch("api/recordings?" + new URLSearchParams({ camera: camera.name, limit: "1" }))
          .then(function (response) { return response.json(); }).then(function (found) {
            if (!(found.recordings || []).length || continuous.indexOf(camera.name) >= 0) return;
            continuous.push(camera.name);
            zoomSelect.closest("label").hidden = false;
            showTimelines();
          });
      });
    }).catch(function () {});
  }

  load();
  showTimelines();
  addPeerCameras();
})();
