// jetwatch live refresh. Every element with data-live="<url>" gets the
// innerHTML of that URL every data-refresh-seconds (on <body>). Pages work
// fully without this script; it only saves the operator a reload.
// No inline scripts or handlers anywhere: the Content-Security-Policy
// forbids them.
(function () {
  "use strict";
  var seconds = parseInt(document.body.getAttribute("data-refresh-seconds"), 10);
  if (!(seconds > 0)) seconds = 10;
  var statusEl = document.querySelector("[data-testid=live-status]");
  var timer = null;
  var inflight = false;

  function setFailed(failed) {
    if (statusEl) statusEl.hidden = !failed;
  }

  // A swap would close the <details> the operator opened (the raw
  // config); remember which were open, by position, and reopen them.
  function openDetails(el) {
    var open = [];
    el.querySelectorAll("details").forEach(function (d, i) {
      if (d.open) open.push(i);
    });
    return open;
  }
  function reopenDetails(el, open) {
    var all = el.querySelectorAll("details");
    open.forEach(function (i) {
      if (all[i]) all[i].open = true;
    });
  }

  function refreshOne(el) {
    var url = el.getAttribute("data-live");
    return fetch(url, { headers: { "Accept": "text/html" }, cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        var open = openDetails(el);
        el.innerHTML = html;
        reopenDetails(el, open);
      });
  }

  // Never swap a region while the operator is typing in it.
  function typingIn() {
    var a = document.activeElement;
    return a && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName) && a.closest("[data-live]");
  }

  function refresh() {
    if (inflight || document.hidden || typingIn()) return;
    var jobs = [];
    document.querySelectorAll("[data-live]").forEach(function (el) {
      if (el.getAttribute("data-live")) jobs.push(refreshOne(el));
    });
    if (jobs.length === 0) return;
    inflight = true;
    Promise.all(jobs)
      .then(function () { setFailed(false); }, function () { setFailed(true); })
      .then(function () { inflight = false; });
  }

  function start() {
    if (timer === null) timer = setInterval(refresh, seconds * 1000);
  }
  function stop() {
    if (timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  }

  // Hidden tabs do not poll; coming back refreshes at once.
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      stop();
    } else {
      refresh();
      start();
    }
  });
  if (!document.hidden) start();

  // Forms that change production state ask first. Without the script they
  // post directly, which is still a deliberate click on a labelled button.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var msg = form.getAttribute && form.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });
})();
