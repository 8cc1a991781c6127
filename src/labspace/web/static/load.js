// labspace: the load page. Follows /hub/api/load/events (server-sent events) and redraws
// the numbers on each snapshot; text carries every value, the bars only repeat it.
(function () {
  "use strict";

  var root = document.getElementById("load");
  if (!root || !window.EventSource) return;
  var status = document.getElementById("load-status");  // live: connection changes only
  var updated = document.getElementById("load-updated");
  var seesAll = root.dataset.all === "true";

  function bytes(value) {
    if (value === null || value === undefined) return "–";
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var size = value, unit = 0;
    while (size >= 1024 && unit < units.length - 1) { size /= 1024; unit += 1; }
    return (unit === 0 ? size.toFixed(0) : size.toFixed(1)) + " " + units[unit];
  }

  function percent(value) {
    return value === null || value === undefined ? "–" : value.toFixed(1) + " %";
  }

  function share(used, total) {
    return used === null || used === undefined || !total ? null : used / total * 100;
  }

  function node(tag, className, text) {
    var made = document.createElement(tag);
    if (className) made.className = className;
    if (text !== undefined) made.textContent = text;  // never HTML: names come from users
    return made;
  }

  function bar(value) {
    var outer = node("div", "bar" + (value !== null && value >= 90 ? " high" : ""));
    outer.setAttribute("aria-hidden", "true");  // the text next to it says the same
    var fill = node("div", "fill");
    fill.style.width = Math.max(0, Math.min(100, value || 0)) + "%";
    outer.appendChild(fill);
    return outer;
  }

  function figure(list, label, field, text, value) {
    list.appendChild(node("dt", "", label));
    var cell = node("dd");
    var words = node("span", "", text);
    words.dataset.field = field;
    cell.appendChild(words);
    if (value !== undefined) cell.appendChild(bar(value));
    list.appendChild(cell);
  }

  function server(data) {
    var card = node("section", "card load-server");
    card.dataset.server = data.name;
    var title = node("h2", "", data.name);
    card.appendChild(title);
    var list = node("dl", "load-figures");
    if (data.measured) {
      figure(list, "CPU", "server-cpu", percent(data.cpu_percent) + " of " + data.cpus +
             " CPUs", data.cpu_percent);
      var memory = share(data.memory_used_bytes, data.memory_total_bytes);
      figure(list, "Memory", "server-memory", bytes(data.memory_used_bytes) + " of " +
             bytes(data.memory_total_bytes) + " (" + percent(memory) + ")", memory);
      if (data.disk_total_bytes) {
        var disk = share(data.disk_used_bytes, data.disk_total_bytes);
        figure(list, "Homes disk", "server-disk", bytes(data.disk_used_bytes) + " of " +
               bytes(data.disk_total_bytes) + " (" + percent(disk) + ")", disk);
      }
    } else {
      figure(list, "Size", "server-size", data.cpus + " CPUs, " +
             bytes(data.memory_total_bytes));
      figure(list, "Reserved", "server-reserved", data.reserved_cpus + " CPUs, " +
             bytes(data.reserved_memory_bytes));
    }
    data.gpus.forEach(function (gpu) {
      var used = share(gpu.memory_used_bytes, gpu.memory_total_bytes);
      figure(list, "GPU " + gpu.index, "gpu-" + gpu.index, gpu.name + ": " +
             percent(gpu.utilization_percent) + " busy, " + bytes(gpu.memory_used_bytes) +
             " of " + bytes(gpu.memory_total_bytes) + (gpu.shared ? ", shared" : "") +
             (!gpu.held ? ", free" : gpu.holders.length ? ", held by " +
              gpu.holders.join(", ") : ", in use"),
             gpu.utilization_percent);
    });
    card.appendChild(list);
    if (data.note) card.appendChild(node("p", "muted load-note", "Usage " + data.note + "."));
    card.appendChild(workspaces(data));
    return card;
  }

  function workspaces(data) {
    var box = node("div");
    var count = data.workspace_count;
    box.appendChild(node("h3", "", seesAll ? "Workspaces running here: " + count :
                         "Your workspaces here (" + count + " running here in all)"));
    if (!data.workspaces.length) {
      box.appendChild(node("p", "muted", seesAll ? "None." : "None of yours."));
      return box;
    }
    var table = node("table", "list");
    var head = node("tr");
    (seesAll ? ["Owner", "Workspace", "CPU", "Memory"] : ["Workspace", "CPU", "Memory"])
      .forEach(function (label, index, all) {
        head.appendChild(node("th", index >= all.length - 2 ? "num" : "", label));
      });
    var thead = node("thead");
    thead.appendChild(head);
    table.appendChild(thead);
    var body = node("tbody");
    data.workspaces.forEach(function (ws) {
      var row = node("tr");
      row.dataset.workspace = ws.owner + "/" + ws.name;
      if (seesAll) row.appendChild(node("td", "", ws.owner));
      row.appendChild(node("td", "", ws.name));
      var cpu = node("td", "num", percent(ws.cpu_percent));
      cpu.dataset.field = "cpu";
      row.appendChild(cpu);
      var memory = node("td", "num", bytes(ws.memory_bytes) +
                        (ws.memory_limit_bytes ? " of " + bytes(ws.memory_limit_bytes) : ""));
      memory.dataset.field = "memory";
      row.appendChild(memory);
      body.appendChild(row);
    });
    table.appendChild(body);
    box.appendChild(table);
    return box;
  }

  function render(snapshot) {
    var cards = snapshot.servers.map(server);
    root.replaceChildren.apply(root, cards);
    var at = new Date(snapshot.taken_at * 1000);
    if (status.textContent !== "Live.") status.textContent = "Live.";
    updated.textContent = "Updated at " + at.toLocaleTimeString() + ".";
    root.dataset.updated = String(snapshot.taken_at);
  }

  var events = new EventSource(root.dataset.events);
  events.addEventListener("load", function (event) { render(JSON.parse(event.data)); });
  events.addEventListener("end", function (event) {
    events.close();
    status.textContent = "Stopped: " + JSON.parse(event.data).reason + ".";
  });
  events.addEventListener("error", function () {
    if (events.readyState !== EventSource.CLOSED) status.textContent = "Reconnecting…";
    else status.textContent = "Disconnected: reload the page.";
  });
}());
