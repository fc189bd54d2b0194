// RubricLab: small progressive enhancements. Pages work without this file.
(function () {
  "use strict";

  function flash(text, level) {
    var box = document.getElementById("messages");
    if (!box) return;
    var p = document.createElement("p");
    p.className = "flash " + (level || "error");
    p.setAttribute("role", "alert");
    p.textContent = text; // text, never HTML
    box.appendChild(p);
  }

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    var reasons = {403: "You are not allowed to do this.", 404: "Not found (it may have been removed).", 413: "Too large."};
    flash(reasons[status] || "The server could not do this (" + status + "). Reload and try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    flash("The server cannot be reached. Check the connection and try again.");
  });
})();
