// jetwatch live refresh: every element with data-live="<url>" is replaced by
// a fresh rendering of that URL each refresh interval. Pages work without it.
(function () {
  "use strict";
  var body = document.body;
  var seconds = parseInt(body.getAttribute("data-refresh-seconds"), 10) || 10;
  var statusEl = document.querySelector("[data-testid=live-status]");
  var timer = null;
  var inflight = false;

  function setFailed(failed) {
    if (statusEl) statusEl.hidden = !failed;
  }

  function refresh() {
    if (inflight || document.hidden) return;
    var regions = document.querySelectorAll("[data-live]");
    var jobs = [];
    regions.forEach(function (el) {
      var url = el.getAttribute("data-live");
      if (!url) return;
      jobs.push(fetch(url, { headers: { "Accept": "text/html" }, cache: "no-store" })
        .then(function (r) {
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.text();
        })
        .then(function (html) { el.innerHTML = html; }));
    });
    if (jobs.length === 0) return;
    inflight = true;
    Promise.all(jobs)
      .then(function () { setFailed(false); })
      .catch(function () { setFailed(true); })
      .then(function () { inflight = false; });
  }

  function start() {
    if (timer === null) timer = setInterval(refresh, seconds * 1000);
  }
  function stop() {
    if (timer !== null) { clearInterval(timer); timer = null; }
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { stop(); } else { refresh(); start(); }
  });
  start();
})();
