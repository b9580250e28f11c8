// hookshop admin, pick/pack/ship: a scan's error answer (a 4xx carrying X-Scan-Feedback) is swapped in like
// a success, so the red feedback shows while the status stays the service's own; any other refused scan
// (403, 500, no answer) turns the feedback red with the form's data-refused sentence.
(function () {
  "use strict";
  function scanForm(elt) { return elt && elt.closest ? elt.closest("form[data-scan]") : null; }
  function refuse(form, status) {
    var box = document.querySelector("[data-scan-feedback]");
    if (!box) { return; }
    box.className = "scan-feedback error";
    box.setAttribute("role", "alert");
    box.textContent = (form.dataset.refused || "HTTP {status}").replace("{status}", String(status || "-"));
  }
  document.addEventListener("htmx:beforeSwap", function (e) {
    var form = scanForm(e.detail.requestConfig && e.detail.requestConfig.elt);
    if (!form || e.detail.xhr.status < 400) { return; }
    if (e.detail.xhr.getResponseHeader("X-Scan-Feedback")) {
      e.detail.shouldSwap = true;
      e.detail.isError = false;
    } else {
      refuse(form, e.detail.xhr.status);
    }
  });
  document.addEventListener("htmx:sendError", function (e) {
    var form = scanForm(e.detail.elt);
    if (form) { refuse(form, 0); }
  });
})();
