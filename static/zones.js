// The zone editor: an admin draws a camera's zones, object mask and motion mask on a snapshot of its picture
// and saves them into the server's config file (PUT /api/cameras/<name>/zones, webapp/api/zones.py), which
// applies them at once; a server without a config file answers with the TOML to paste, shown here.
// A polygon is made by clicking its corners on the picture (3 at least), then "add"; coordinates are the main
// stream's pixels, as the snapshot's are.
(function () {
  "use strict";

  var KINDS = { zone: "zone", object_mask: "object mask", motion_mask: "motion mask" };
  var COLOURS = { zone: "#ffb21d", object_mask: "#ff4d4d", motion_mask: "#4da6ff" };
  var SVG = "http://www.w3.org/2000/svg";

  var STYLE = [
    ".zone-editor { max-width: min(96vw, 1000px); width: 100%; background: #1c1c1c; color: #eee; border: 1px solid #444;",
    "  border-radius: 6px; padding: .75rem; }",
    ".zone-editor::backdrop { background: rgba(0, 0, 0, .7); }",
    ".zone-editor { max-height: 96vh; overflow: auto; }",
    ".zone-editor .picture { position: relative; width: fit-content; margin: 0 auto; line-height: 0;",
    "  cursor: crosshair; user-select: none; }",
    ".zone-editor .picture img { display: block; max-width: 100%; height: auto; min-width: 160px; background: #000; }",
    ".zone-editor .picture svg { position: absolute; inset: 0; width: 100%; height: 100%; }",
    ".zone-editor .controls { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: .5rem 0; }",
    ".zone-editor input, .zone-editor select, .zone-editor textarea { background: #111; color: #eee;",
    "  border: 1px solid #444; padding: .2rem .3rem; font: inherit; }",
    ".zone-editor button { color: #8cf; background: none; border: 1px solid #335; border-radius: 3px;",
    "  padding: .1rem .5rem; font: inherit; cursor: pointer; }",
    ".zone-editor ul { list-style: none; padding: 0; margin: .25rem 0; display: flex; flex-wrap: wrap; gap: .5rem; }",
    ".zone-editor li { background: #2a2a2a; border-radius: 3px; padding: .1rem .4rem; }",
    ".zone-editor textarea { width: 100%; min-height: 10rem; font-family: monospace; }",
    ".zone-editor [data-zone-field=status] { color: #ccc; }",
    ".zone-editor [data-zone-field=status].failed { color: #f0b0a0; }"
  ].join("\n");

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { node.setAttribute(name, attributes[name]); });
    if (text) node.textContent = text;
    return node;
  }

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // One editor for the page; it shows one camera at a time.
  function Editor() {
    var style = element("style");
    style.textContent = STYLE;
    document.head.appendChild(style);
    this.dialog = element("dialog", { "class": "zone-editor", "aria-label": "zones and masks" });
    this.title = element("h2", { style: "margin: 0 0 .5rem; font-size: 1.1rem" });
    this.picture = element("div", { "class": "picture" });
    this.img = element("img", { alt: "the camera's picture to draw on" });
    this.svg = document.createElementNS(SVG, "svg");
    this.picture.append(this.img, this.svg);
    var controls = element("div", { "class": "controls" });
    this.kind = element("select", { "data-zone-field": "kind", "aria-label": "what the shape is" });
    Object.keys(KINDS).forEach(function (kind) { this.kind.appendChild(element("option", { value: kind }, KINDS[kind])); }, this);
    this.name = element("input", { "data-zone-field": "name", placeholder: "zone name", size: "12",
                                   pattern: "[A-Za-z0-9][A-Za-z0-9_-]{0,63}", "aria-label": "zone name" });
    this.objects = element("input", { "data-zone-field": "objects", placeholder: "labels (optional): person, car",
                                      size: "22", "aria-label": "labels that count in the zone" });
    this.add = element("button", { type: "button", "data-zone-action": "add" }, "add");
    this.undo = element("button", { type: "button", "data-zone-action": "undo" }, "undo point");
    this.points = element("span", { "data-zone-field": "points" });
    controls.append(this.kind, this.name, this.objects, this.undo, this.add, this.points);
    this.list = element("ul", { "data-zone-field": "shapes" });
    var actions = element("div", { "class": "controls" });
    this.save = element("button", { type: "button", "data-zone-action": "save" }, "save");
    this.close = element("button", { type: "button", "data-zone-action": "close" }, "close");
    this.status = element("span", { "data-zone-field": "status", role: "status" });
    actions.append(this.save, this.close, this.status);
    this.toml = element("textarea", { "data-zone-field": "toml", readonly: "", hidden: "",
                                      "aria-label": "the TOML to paste into the config file" });
    this.dialog.append(this.title, this.picture, controls, this.list, actions, this.toml);
    document.body.appendChild(this.dialog);
    this.shapes = [];
    this.drawing = [];
    var self = this;
    this.picture.addEventListener("click", function (event) { self.click(event); });
    this.add.addEventListener("click", function () { self.finish(); });
    this.undo.addEventListener("click", function () { self.drawing.pop(); self.render(); });
    this.kind.addEventListener("change", function () { self.render(); });
    this.save.addEventListener("click", function () { self.store(); });
    this.close.addEventListener("click", function () { self.dialog.close(); });
    this.img.addEventListener("load", function () { self.fit(); self.render(); });
    window.addEventListener("resize", function () { self.fit(); });
  }

  // The picture as large as the dialog's width and about two thirds of the window's height allow.
  Editor.prototype.fit = function () {
    var size = this.pictureSize(), room = this.dialog.clientWidth - 24;
    var scale = Math.min(room / size[0], window.innerHeight * 0.62 / size[1]);
    if (scale > 0) this.img.style.width = Math.floor(size[0] * scale) + "px";
  };

  Editor.prototype.say = function (text, failed) {
    this.status.textContent = text;
    this.status.className = failed ? "failed" : "";
  };

  Editor.prototype.open = function (camera) {
    var self = this;
    this.camera = camera;
    this.shapes = [];
    this.drawing = [];
    this.toml.hidden = true;
    this.title.textContent = "zones and masks of " + camera;
    this.say("loading\u2026");
    this.dialog.showModal();
    this.img.src = "snapshot/" + encodeURIComponent(camera) + ".jpg?t=" + Date.now();
    fetch(this.url(), { headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) throw new Error(body.error || "the zones could not be read");
          self.load(body);
        });
      })
      .catch(function (error) { self.say(error.message, true); });
  };

  Editor.prototype.url = function () { return "api/cameras/" + encodeURIComponent(this.camera) + "/zones"; };

  Editor.prototype.load = function (body) {
    var shapes = [];
    Object.keys(body.zones).forEach(function (name) {
      var zone = body.zones[name];
      shapes.push({ kind: "zone", name: name, points: zone.coordinates, objects: zone.objects || [],
                    min_seconds: zone.min_seconds || 0 });
    });
    ["object_mask", "motion_mask"].forEach(function (kind) {
      body[kind].forEach(function (points) { shapes.push({ kind: kind, points: points }); });
    });
    this.shapes = shapes;
    this.size = body.width && body.height ? [body.width, body.height] : null;
    this.say(body.writable ? "saves into " + body.file
             : body.file ? "this server cannot write its config file: saving shows the TOML to paste"
             : "no config file: saving shows the TOML to paste");
    this.render();
  };

  // The picture's size in its own pixels (the main stream's): what coordinates are in.
  Editor.prototype.pictureSize = function () {
    if (this.img.naturalWidth) return [this.img.naturalWidth, this.img.naturalHeight];
    return this.size || [640, 480];
  };

  // A polygon given in fractions of the picture (every number 0-1), as the config file allows, in pixels.
  Editor.prototype.inPixels = function (points) {
    var size = this.pictureSize();
    var fractions = points.every(function (p) { return p[0] >= 0 && p[0] <= 1 && p[1] >= 0 && p[1] <= 1; });
    return fractions ? points.map(function (p) { return [p[0] * size[0], p[1] * size[1]]; }) : points;
  };

  Editor.prototype.click = function (event) {
    var box = this.img.getBoundingClientRect(), size = this.pictureSize();
    if (!box.width || !box.height) return;
    var x = Math.round((event.clientX - box.left) * size[0] / box.width);
    var y = Math.round((event.clientY - box.top) * size[1] / box.height);
    this.drawing.push([Math.min(Math.max(0, x), size[0]), Math.min(Math.max(0, y), size[1])]);
    this.render();
  };

  Editor.prototype.finish = function () {
    var kind = this.kind.value, name = this.name.value.trim();
    if (this.drawing.length < 3) { this.say("click at least 3 corners on the picture first", true); return; }
    if (kind === "zone") {
      if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(name)) {
        this.say("name the zone: letters, digits, - and _", true);
        return;
      }
      this.shapes = this.shapes.filter(function (shape) { return !(shape.kind === "zone" && shape.name === name); });
    }
    var objects = this.objects.value.split(",").map(function (label) { return label.trim(); })
      .filter(function (label) { return label; });
    this.shapes.push({ kind: kind, name: kind === "zone" ? name : undefined, points: this.drawing,
                       objects: objects, min_seconds: 0 });
    this.drawing = [];
    this.name.value = "";
    this.say("added " + KINDS[kind] + (kind === "zone" ? " " + name : "") + "; save to keep it");
    this.render();
  };

  Editor.prototype.body = function () {
    var body = { zones: {}, object_mask: [], motion_mask: [] };
    this.shapes.forEach(function (shape) {
      if (shape.kind === "zone") {
        var zone = { coordinates: shape.points };
        if (shape.objects && shape.objects.length) zone.objects = shape.objects;
        if (shape.min_seconds) zone.min_seconds = shape.min_seconds;
        body.zones[shape.name] = zone;
      } else {
        body[shape.kind].push(shape.points);
      }
    });
    return body;
  };

  Editor.prototype.store = function () {
    var self = this;
    this.save.disabled = true;
    this.say("saving\u2026");
    fetch(this.url(), { method: "PUT", body: JSON.stringify(this.body()),
                        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() } })
      .then(function (response) {
        return response.json().then(function (body) {
          if (response.ok) {
            self.toml.hidden = true;
            self.load(body);
            self.say("saved into " + body.file + " and applied");
            return;
          }
          if (body.toml !== undefined) {
            self.toml.value = body.toml;
            self.toml.hidden = false;
          }
          self.say(body.error || "not saved", true);
        });
      })
      .catch(function (error) { self.say(error.message, true); })
      .finally(function () { self.save.disabled = false; });
  };

  Editor.prototype.polygon = function (points, colour, closed) {
    var shape = document.createElementNS(SVG, closed ? "polygon" : "polyline");
    shape.setAttribute("points", points.map(function (p) { return p[0] + "," + p[1]; }).join(" "));
    shape.setAttribute("fill", closed ? colour + "44" : "none");
    shape.setAttribute("stroke", colour);
    shape.setAttribute("stroke-width", "2");
    shape.setAttribute("vector-effect", "non-scaling-stroke");
    return shape;
  };

  Editor.prototype.render = function () {
    var self = this, size = this.pictureSize();
    this.svg.setAttribute("viewBox", "0 0 " + size[0] + " " + size[1]);
    this.svg.setAttribute("preserveAspectRatio", "none");
    var drawn = this.shapes.map(function (shape) {
      return self.polygon(self.inPixels(shape.points), COLOURS[shape.kind], true);
    });
    if (this.drawing.length) {
      drawn.push(this.polygon(this.drawing, COLOURS[this.kind.value], this.drawing.length > 2));
      this.drawing.forEach(function (p) {
        var dot = document.createElementNS(SVG, "circle");
        dot.setAttribute("cx", p[0]);
        dot.setAttribute("cy", p[1]);
        dot.setAttribute("r", Math.max(2, size[0] / 160));
        dot.setAttribute("fill", COLOURS[self.kind.value]);
        drawn.push(dot);
      });
    }
    this.svg.replaceChildren.apply(this.svg, drawn);
    this.points.textContent = this.drawing.length ? this.drawing.length + " corner" +
      (this.drawing.length === 1 ? "" : "s") : "click the picture to place corners";
    this.name.hidden = this.objects.hidden = this.kind.value !== "zone";
    this.list.replaceChildren.apply(this.list, this.shapes.map(function (shape, index) {
      var item = element("li", { "data-kind": shape.kind },
                         KINDS[shape.kind] + (shape.name ? " " + shape.name : "") + " ");
      item.style.borderLeft = "4px solid " + COLOURS[shape.kind];
      var remove = element("button", { type: "button", "data-zone-action": "remove",
                                        "aria-label": "remove " + KINDS[shape.kind] }, "\u00d7");
      remove.addEventListener("click", function () { self.shapes.splice(index, 1); self.render(); });
      item.appendChild(remove);
      return item;
    }));
  };

  var editor = null;
  document.querySelectorAll('.tile [data-action="zones"]').forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      editor = editor || new Editor();
      editor.open(button.closest(".tile").dataset.camera);
    });
  });
})();
