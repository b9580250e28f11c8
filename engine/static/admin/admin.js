// hookshop admin: the few lines of behaviour htmx does not give (no inline scripts: the CSP forbids them).
(function () {
  "use strict";
  var token = function () { var m = document.querySelector('meta[name="csrf-token"]'); return m ? m.content : ""; };
  // every htmx request carries the session's CSRF token
  document.addEventListener("htmx:configRequest", function (e) { e.detail.headers["X-CSRFToken"] = token(); });
  // a language <select> submits its form on change
  document.addEventListener("change", function (e) {
    if (e.target.matches("select[data-autosubmit]")) { e.target.form.submit(); }
  });
  // a form is sent once: a double click or a double Enter does not send it twice
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.dataset.sending === "1") { e.preventDefault(); return; }
    if (!form.hasAttribute("hx-post")) { form.dataset.sending = "1"; }
  });
  // scan inputs: keep the focus there, queue scans that arrive while one is being sent (never lose one)
  var queue = [];
  // the code travels in the request's parameters, not through the input: the scanner may already be typing
  // the next code into it while this one is on its way
  function sendNext(form) {
    if (form.dataset.busy === "1" || !queue.length) { return; }
    form.dataset.busy = "1";
    form.scanCode = queue.shift();
    htmx.trigger(form, "scan");
  }
  document.addEventListener("htmx:configRequest", function (e) {
    var form = e.detail.elt;
    if (form && form.matches && form.matches("form[data-scan]") && form.scanCode !== undefined) {
      e.detail.parameters.code = form.scanCode;
    }
  });
  document.addEventListener("keydown", function (e) {
    var input = e.target;
    if (e.key !== "Enter" || !input.matches || !input.matches("form[data-scan] input[name=code]")) { return; }
    e.preventDefault();
    var code = input.value.trim();
    input.value = "";
    if (!code) { return; }  // a second Enter on an empty input sends nothing
    queue.push(code);
    sendNext(input.form);
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.detail.elt && e.detail.elt.closest ? e.detail.elt.closest("form[data-scan]") : null;
    if (!form) { return; }
    form.dataset.busy = "0";
    form.scanCode = undefined;
    var input = form.querySelector("input[name=code]");
    if (input) { input.focus(); }  // not emptied: it may hold the start of the next scan
    var feedback = document.querySelector(".scan-feedback");
    var ok = feedback && feedback.classList.contains("ok");
    document.body.classList.remove("scan-flash-ok", "scan-flash-error");
    void document.body.offsetWidth;  // restart the animation
    document.body.classList.add(ok ? "scan-flash-ok" : "scan-flash-error");
    sendNext(form);
  });
  document.addEventListener("htmx:afterSettle", function () {
    var input = document.querySelector("form[data-scan] input[name=code]");
    if (input && document.activeElement !== input && !document.activeElement.matches("input, select, textarea")) { input.focus(); }
  });
})();
