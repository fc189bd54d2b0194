// RubricLab adjudication: after a gold label is saved (htmx swaps its row in place), the focus
// moves to the next disagreement's gold value, so an owner can work down the page by keyboard.
// The page works without this file (plain forms, POST + redirect back to the same row).
(function () {
  "use strict";

  var saving = null; // id of the row whose form was sent

  document.addEventListener("htmx:beforeRequest", function (event) {
    var row = event.target.closest && event.target.closest("[data-disagreement]");
    saving = row ? row.id : null;
  });

  document.addEventListener("htmx:afterSettle", function () {
    if (!saving) return;
    var row = document.getElementById(saving);
    saving = null;
    if (!row) return;
    if (row.querySelector("[role=alert]")) { // refused: stay on this row
      var here = row.querySelector("select[name=value]");
      if (here) here.focus();
      return;
    }
    var next = row.nextElementSibling;
    while (next && !next.matches("[data-disagreement]")) next = next.nextElementSibling;
    var target = next ? next.querySelector("select[name=value]") : document.querySelector(".pager a[rel=next]");
    if (target) {
      target.focus({preventScroll: true});
      (next || target).scrollIntoView({block: "start", behavior: "instant"});
    }
  });
})();
