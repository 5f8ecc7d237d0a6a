// The boxes found on the LAN over mDNS that this hub has not added yet (an admin's page only):
// webapp/runtime/mdns.py's /api/boxes/found, shown with the --peer line and the [peers.NAME] table
// that would add each. Everything a box announces is put in as text, never as HTML: any device on the
// LAN can announce anything.
(function () {
  "use strict";
  var section = document.getElementById("boxes-found");
  if (!section) return;
  var server = section.getAttribute("data-server") || "/";
  var EVERY_MS = 30000;

  function element(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function show(boxes) {
    section.replaceChildren();
    if (!boxes.length) {
      section.hidden = true;
      return;
    }
    section.appendChild(element("h2", "Boxes found on the network, not added yet"));
    section.appendChild(element("p", "Add one with --peer NAME=URL, or a [peers.NAME] table in the config file " +
      "(then reload with SIGHUP), giving the hub a user of that box (user and password; a viewer is enough) " +
      "or a peer token made on that box (camstream token create --peer)."));
    var list = element("ul");
    boxes.forEach(function (box) {
      var item = element("li");
      item.setAttribute("data-box", box.url);
      var link = element("a", box.name);
      link.href = box.url;
      item.appendChild(link);
      item.appendChild(element("span", " " + box.url + (box.version ? " (camstream " + box.version + ")" : "")));
      item.appendChild(element("code", box.flag, "flag"));
      item.appendChild(element("pre", box.table, "table"));
      list.appendChild(item);
    });
    section.appendChild(list);
    section.hidden = false;
  }

  function refresh() {
    fetch(server.replace(/\/?$/, "/") + "api/boxes/found", { headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : { boxes: [] }; })
      .then(function (answer) { show(Array.isArray(answer.boxes) ? answer.boxes : []); })
      .catch(function () { /* the server is away: the list stays as it was */ });
  }

  refresh();
  setInterval(refresh, EVERY_MS);
})();
