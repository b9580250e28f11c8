// hookshop admin, stock screens: a refused scan (a 4xx answer) still shows its feedback. htmx swaps only
// 2xx answers by default; the scan forms of the stock screens (data-stock-scan) answer a refused serial
// with its true status (409, 422) and the feedback to show, which is swapped in like a success.
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (e) {
    var elt = e.detail.requestConfig ? e.detail.requestConfig.elt : e.detail.elt;
    var status = e.detail.xhr ? e.detail.xhr.status : 0;
    if (status >= 400 && status < 500 && elt && elt.closest && elt.closest("[data-stock-scan]")) {
      e.detail.shouldSwap = true;
      e.detail.isError = false;
    }
  });
})();
