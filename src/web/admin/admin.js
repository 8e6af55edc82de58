// herald dashboard: while an issue is being sent, poll its progress and update the bar,
// the counts and the status until the send is finished. The pages work without this
// script (they have a "Refresh" link); it only saves the reloads.
(function () {
  "use strict";

  // Counts grouped as the page's language groups them; the words come from the server.
  var numbers = new Intl.NumberFormat(document.documentElement.lang || undefined);

  function update(box, s) {
    var bar = box.querySelector("progress");
    var label = box.querySelector("[data-progress-label]");
    var status = box.querySelector("[data-status-label]");
    if (bar) { bar.value = s.progress.percent; bar.textContent = s.progress.percent + "%"; }
    if (label) {
      label.textContent = s.progress_label;
    }
    if (status) { status.textContent = s.status_label; }
    var throttled = document.querySelector("[data-throttled]");
    if (throttled && s.throttled) {
      throttled.hidden = s.throttled.length === 0;
      throttled.querySelector("[data-throttled-list]").textContent = s.throttled_labels.join(", ");
    }
    box.setAttribute("data-status", s.status);
    Object.keys(s.counts).forEach(function (name) {
      var cell = document.querySelector('[data-count="' + name + '"]');
      if (cell) { cell.textContent = numbers.format(s.counts[name]); }
    });
    if (s.status !== "sending") {
      var refresh = box.querySelector(".refresh");
      if (refresh) { refresh.remove(); }
    }
  }

  function watch(box) {
    var url = box.getAttribute("data-progress-url");
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) {
          if (!r.ok) { throw new Error("HTTP " + r.status); }
          return r.json();
        })
        .then(function (s) {
          update(box, s);
          if (s.status === "sending") { setTimeout(poll, 1000); }
        })
        .catch(function () { setTimeout(poll, 5000); });
    }
    setTimeout(poll, 300);
  }

  document.querySelectorAll('[data-progress-url][data-status="sending"]').forEach(watch);
})();
