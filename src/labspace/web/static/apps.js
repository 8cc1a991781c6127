// The apps page: refresh each pool's figures in place from /hub/api/apps every few seconds
// (the page renders them too, for browsers without scripts), and no reload.
(function () {
  "use strict";

  var table = document.getElementById("apps");
  if (!table) return;
  var api = table.getAttribute("data-api");
  var note = document.getElementById("apps-updated");
  var EVERY = 5000;
  var COUNTS = ["ready", "starting", "claimed", "queued", "culled", "claims"];

  // As web/apppages.py's latency_text: the upper bound of the first bucket whose cumulative
  // count reaches q of all claims.
  function seconds(value) {
    return value < 1 ? +(value * 1000).toPrecision(6) + " ms" : +value.toPrecision(6) + " s";
  }
  function latency(histogram, q) {
    var total = histogram && histogram.count;
    if (!total) return "-";
    var buckets = histogram.buckets || [];
    var last = null;
    for (var i = 0; i < buckets.length; i++) {
      if (buckets[i].le !== "+Inf") last = buckets[i].le;
      if (buckets[i].count >= q * total) {
        if (buckets[i].le !== "+Inf") return "\u2264 " + seconds(buckets[i].le);
        break;
      }
    }
    return last === null ? "-" : "> " + seconds(last);
  }

  function set(row, field, text) {
    var cell = row.querySelector('[data-field="' + field + '"]');
    if (cell && cell.textContent !== String(text)) cell.textContent = text;
  }

  function state(row, draining) {
    var cell = row.querySelector('[data-field="draining"]');
    if (!cell) return;
    var badge = cell.querySelector(".badge") || cell.appendChild(document.createElement("span"));
    badge.className = "badge " + (draining ? "state-stopping" : "state-running");
    badge.textContent = draining ? "draining" : "open";
  }

  function update(apps) {
    var seen = {};
    apps.forEach(function (app) {
      seen[app.name] = true;
      var row = table.querySelector('tr[data-app="' + CSS.escape(app.name) + '"]');
      if (!row) return;  // added elsewhere: shown at the next load
      var pool = app.pool;
      COUNTS.forEach(function (field) { set(row, field, pool[field]); });
      set(row, "p50", latency(pool.claim_latency_seconds, 0.5));
      set(row, "p99", latency(pool.claim_latency_seconds, 0.99));
      state(row, pool.draining);
      row.classList.remove("gone");
    });
    table.querySelectorAll("tr[data-app]").forEach(function (row) {
      if (!seen[row.getAttribute("data-app")]) row.classList.add("gone");  // deleted elsewhere
    });
    if (note) note.textContent = "Figures as of " + new Date().toLocaleTimeString() + ".";
  }

  function poll() {
    if (document.hidden) { setTimeout(poll, EVERY); return; }
    fetch(api, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (apps) { update(apps); setTimeout(poll, EVERY); })
      .catch(function () {
        // Logged out, or the hub restarting: say so, and try again a little later.
        if (note) note.textContent = "Figures not updated since " +
          new Date().toLocaleTimeString() + " (the hub did not answer).";
        setTimeout(poll, EVERY * 3);
      });
  }
  setTimeout(poll, EVERY);
})();
