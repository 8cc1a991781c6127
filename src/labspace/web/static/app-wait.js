// The instant app's waiting page: ask the hub (a long poll) until a container is ours, then
// go there. The claim cookie comes with the answer; the ticket works only in this browser.
(function () {
  var box = document.getElementById("app-wait");
  if (!box) return;
  var url = "/hub/apps/" + encodeURIComponent(box.dataset.app) + "/queue/" +
            encodeURIComponent(box.dataset.ticket);
  var place = document.getElementById("place");
  function ask(delay) {
    setTimeout(function () {
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.json().then(function (b) { return [r.status, b]; }); })
        .then(function (answer) {
          var status = answer[0], body = answer[1];
          if (body.state === "ready") { window.location.replace(body.url); return; }
          if (body.state === "waiting") {
            place.textContent = body.position > 1 ? body.position + " people before you"
                                                  : "you are next";
            ask(0);
            return;
          }
          // Expired or drained: the link itself says what is going on now.
          if (status >= 400) { window.location.replace("/apps/" + box.dataset.app); }
        })
        .catch(function () { ask(2000); });
    }, delay);
  }
  ask(0);
})();
