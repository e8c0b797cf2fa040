// imagegate dashboard: live updates. Every element with data-live="<url>"
// is replaced by the server's re-rendered HTML whenever the stream at
// <url> sends an "update" event. Without this script the pages are the
// same, as of their load; a reload shows the present.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  if (!window.EventSource) return;
  document.querySelectorAll("[data-live]").forEach(function (el) {
    var src = new EventSource(el.getAttribute("data-live"));
    src.addEventListener("update", function (ev) {
      el.innerHTML = ev.data;
      el.setAttribute("data-updated", String(Date.now()));
    });
    src.addEventListener("ended", function () {
      src.close();
      window.location.assign("/ui/login?next=" + encodeURIComponent(window.location.pathname));
    });
  });
});
