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

  // Times: the server writes each <time> relative ("3m ago") with the
  // absolute time in UTC in its title. Unless the operator chose UTC,
  // titles show the browser's zone instead, named. A title that is a
  // sentence (data-sentence) is left as the server wrote it, in UTC.
  var tzKey = "jetwatch.timezone";
  function wantUTC() {
    try { return window.localStorage.getItem(tzKey) === "utc"; } catch (e) { return false; }
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function zoneName(d) {
    try {
      var parts = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(d);
      for (var i = 0; i < parts.length; i++) {
        if (parts[i].type === "timeZoneName") return parts[i].value;
      }
    } catch (e) { /* fall through */ }
    var off = -d.getTimezoneOffset();
    return "UTC" + (off < 0 ? "-" : "+") + pad(Math.floor(Math.abs(off) / 60)) + ":" + pad(Math.abs(off) % 60);
  }
  function absolute(d, utc) {
    if (utc) {
      return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
        pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds()) + " UTC";
    }
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + " " + zoneName(d);
  }
  function localTimes(root) {
    var utc = wantUTC();
    root.querySelectorAll("time[datetime][title]:not([data-sentence])").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d.getTime())) el.title = absolute(d, utc);
    });
  }
  function zoneToggle() {
    var el = document.querySelector("[data-tz-toggle]");
    if (!el) return;
    var utc = wantUTC();
    el.textContent = utc ? "Times in UTC. " : "Times in your zone (" + zoneName(new Date()) + "). ";
    var b = document.createElement("button");
    b.type = "button";
    b.className = "link";
    b.setAttribute("data-testid", "time-zone-toggle");
    b.textContent = utc ? "Show local times" : "Show UTC";
    b.addEventListener("click", function () {
      try { window.localStorage.setItem(tzKey, utc ? "local" : "utc"); } catch (e) { /* private mode */ }
      zoneToggle();
      localTimes(document);
    });
    el.appendChild(b);
  }
  zoneToggle();
  localTimes(document);

  // The overview's fragment carries the navigation's counts: copy them
  // into the navigation, so its badges stay as live as the page.
  function navCounts(el) {
    var data = el.querySelector("[data-nav-counts]");
    if (!data) return;
    data.querySelectorAll("[data-nav-badge]").forEach(function (src) {
      var dst = document.querySelector("header [data-nav-badge=" + src.getAttribute("data-nav-badge") + "]");
      if (!dst) return;
      dst.textContent = src.textContent;
      dst.title = src.title;
      dst.hidden = src.textContent === "";
      dst.className = "nb " + src.getAttribute("data-level");
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
        // The operator may have started typing while this was fetched.
        if (typingInside(el)) return;
        var open = openDetails(el);
        el.innerHTML = html;
        reopenDetails(el, open);
        localTimes(el);
        navCounts(el);
      });
  }

  // Never swap a region while the operator is typing in it.
  function typingIn() {
    var a = document.activeElement;
    return a && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName) && a.closest("[data-live]");
  }
  function typingInside(el) {
    var a = document.activeElement;
    return a && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName) && el.contains(a);
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
