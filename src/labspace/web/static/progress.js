// labspace: confirm dangerous forms, and follow a workspace's start as server-sent events.
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  var box = document.getElementById("progress");
  if (!box) return;
  var list = document.getElementById("steps");
  var fill = document.getElementById("progress-fill");
  var note = document.getElementById("progress-note");
  var bar = box.querySelector(".bar");
  var url = box.dataset.url;
  var launch = box.dataset.launch === "true";

  // How far along a start is, by its steps (see workspaces/manager.py).
  var STEPS = {
    "queued": 10, "preparing home": 25, "container created": 40, "container started": 55,
    "waiting for the app to answer": 70, "app answering": 90, "ready": 100
  };
  var percent = 0;

  function go() {
    if (note) note.textContent = "Ready: opening the workspace…";
    window.location.assign(url);
  }

  if (box.dataset.state === "running") {
    if (launch) go();
    return;
  }
  if (box.dataset.busy !== "true" || !window.EventSource) return;

  var seen = {};
  Array.prototype.forEach.call(list.children, function (item) { seen[item.dataset.id] = true; });

  function advance(event) {
    var step = STEPS[event.message];
    percent = Math.max(percent, step === undefined ? Math.min(percent + 5, 95) : step);
    if (event.state === "running") percent = 100;
    fill.style.width = percent + "%";
    bar.setAttribute("aria-valuenow", String(percent));
  }

  var badge = document.querySelector("#state-badge .badge");

  function show(event) {
    if (badge) {
      badge.className = "badge state-" + event.state;
      badge.textContent = event.state;
    }
    if (seen[event.id]) return;
    seen[event.id] = true;
    if (event.state === "pending" && event.message === "queued") {
      list.textContent = "";  // a new start: its own list of steps
      percent = 0;
    }
    var item = document.createElement("li");
    item.className = "step state-" + event.state;
    item.dataset.id = event.id;
    var time = document.createElement("time");
    time.textContent = new Date(event.at).toLocaleTimeString([], {hour12: false});
    var state = document.createElement("span");
    state.className = "state";
    state.textContent = event.state;
    var text = document.createElement("span");
    text.className = "text";
    text.textContent = (event.message || "").split("\n")[0];
    item.appendChild(time);
    item.appendChild(state);
    item.appendChild(text);
    list.appendChild(item);
  }

  // Replay what the page already shows, for the bar.
  Array.prototype.forEach.call(list.children, function (item) {
    advance({state: item.className.replace(/^.*state-/, ""),
             message: item.querySelector(".text").textContent});
  });

  var source = new EventSource(box.dataset.events + "?after=" + encodeURIComponent(box.dataset.after));
  source.addEventListener("progress", function (message) {
    var event = JSON.parse(message.data);
    show(event);
    advance(event);
    if (event.state === "running") {
      source.close();
      go();
    } else if (event.state === "failed" || event.state === "stopped") {
      source.close();
      if (event.state === "failed") bar.classList.add("failed");
      if (note) {
        note.textContent = event.state === "failed" ? "The start failed: loading the details…"
                                                    : "The workspace stopped.";
      }
      window.setTimeout(function () { window.location.replace(box.dataset.page); }, 600);
    }
  });
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED && note) {
      note.textContent = "Lost the connection to labspace: reload the page.";
    } else if (note) {
      note.textContent = "Reconnecting…";
    }
  });
  source.addEventListener("open", function () {
    if (note) note.textContent = "Following progress…";
  });
})();
