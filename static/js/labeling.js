// RubricLab labelling screen: keyboard first. The page works without this file (plain forms,
// POST + redirect); this adds the keys. No inline script anywhere (CSP): loaded with defer.
//
//   1..9, 0       pick that level for the current criterion, then move to the next criterion
//   Tab, ↓ / ↑    next / previous criterion (Shift+Tab back; Tab from the last goes on to the
//                 comment, as the browser would)
//   Enter         submit and bring the next item, which starts at its first criterion
//   C             comment: Ctrl+Enter there submits, Esc goes back to the criterion
//   S             skip (opens the reason box)     U  undo the last submission
//   ?             show / hide the keys
(function () {
  "use strict";

  var current = 0;

  function form() { return document.querySelector("[data-label-form]"); }
  function criteria() {
    var f = form();
    return f ? Array.prototype.slice.call(f.querySelectorAll("fieldset[data-criterion]")) : [];
  }

  function focusCriterion(index) {
    var all = criteria();
    if (!all.length) return;
    current = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (fs, i) { fs.classList.toggle("current", i === current); });
    var box = all[current];
    var target = box.querySelector("input[type=radio]:checked") || box;
    target.focus({preventScroll: true});
    box.scrollIntoView({block: "nearest"});
  }

  function firstUnanswered() {
    var all = criteria();
    for (var i = 0; i < all.length; i++) {
      if (!all[i].querySelector("input[type=radio]:checked")) return i;
    }
    return 0;
  }

  function pick(digit) {
    var box = criteria()[current];
    if (!box) return false;
    var radio = box.querySelector('input[type=radio][data-digit="' + digit + '"]');
    if (!radio) return false;
    radio.checked = true;
    radio.dispatchEvent(new Event("change", {bubbles: true}));
    if (current < criteria().length - 1) focusCriterion(current + 1);
    else radio.focus({preventScroll: true});
    return true;
  }

  function submit(f) {
    if (!f) return;
    // A key pressed the instant a new panel arrives may beat htmx to the new form: process it
    // first (harmless when done), so the request goes by htmx and not as a page load.
    if (window.htmx) window.htmx.process(f);
    if (f.requestSubmit) f.requestSubmit(); else f.submit();
  }

  function toggleHelp() {
    var help = document.getElementById("keys-help");
    if (help) help.open = !help.open;
  }

  function openSkip() {
    var box = document.getElementById("skip-box");
    if (!box) return;
    box.open = true;
    var reason = box.querySelector("input[name=reason]");
    if (reason) reason.focus();
  }

  function typing(el) {
    if (!el) return false;
    var tag = el.tagName;
    return tag === "TEXTAREA" || tag === "SELECT" ||
      (tag === "INPUT" && el.type !== "radio" && el.type !== "checkbox" && el.type !== "hidden");
  }

  document.addEventListener("keydown", function (event) {
    if (!form() && !document.getElementById("undo-form")) return;
    if (event.altKey || event.metaKey) return;
    var el = event.target;
    if (typing(el)) {
      if (el.tagName === "TEXTAREA" && event.key === "Enter" && event.ctrlKey) {
        event.preventDefault();
        // Leave the comment box first: htmx gives the focus back to the element with the same
        // id after a swap, and the next item's digits would land in its comment.
        el.blur();
        submit(form());
      } else if (el.tagName === "INPUT" && event.key === "Enter" && el.form) {
        event.preventDefault(); // e.g. the skip reason: its own form, by htmx
        submit(el.form);
      } else if (event.key === "Escape") {
        el.blur();
        focusCriterion(current);
      }
      return; // letters and digits belong to the text being typed
    }
    if (event.ctrlKey) return;
    var key = event.key;
    if (key === "Tab") {
      // Tab walks criteria, not the radio buttons of one criterion. At either end the browser
      // takes over (on to the comment, or back out of the form): the keys never trap focus.
      var inside = el && el.closest && el.closest("fieldset[data-criterion]");
      var step = event.shiftKey ? -1 : 1;
      var to = current + step;
      if (inside && to >= 0 && to < criteria().length) {
        event.preventDefault();
        focusCriterion(to);
      }
      return;
    }
    if (/^[0-9]$/.test(key)) {
      if (pick(key)) event.preventDefault();
    } else if (key === "ArrowDown" || key === "j") {
      event.preventDefault();
      focusCriterion(current + 1);
    } else if (key === "ArrowUp" || key === "k") {
      event.preventDefault();
      focusCriterion(current - 1);
    } else if (key === "Enter") {
      if (el && (el.tagName === "BUTTON" || el.tagName === "A" || el.tagName === "SUMMARY")) return;
      event.preventDefault();
      submit(form());
    } else if (key === "s" || key === "S") {
      event.preventDefault();
      openSkip();
    } else if (key === "u" || key === "U") {
      event.preventDefault();
      submit(document.getElementById("undo-form"));
    } else if (key === "c" || key === "C") {
      var comment = document.getElementById("comment");
      if (comment) { event.preventDefault(); comment.focus(); }
    } else if (key === "?") {
      event.preventDefault();
      toggleHelp();
    }
  });

  // Clicking or tabbing into a criterion makes it the current one.
  document.addEventListener("focusin", function (event) {
    var box = event.target.closest && event.target.closest("fieldset[data-criterion]");
    if (!box) return;
    var index = criteria().indexOf(box);
    if (index >= 0 && index !== current) {
      current = index;
      criteria().forEach(function (fs, i) { fs.classList.toggle("current", i === current); });
    }
  });

  function start() {
    if (!form()) return;
    // Someone quick may already be typing a skip reason or a comment: leave the focus there.
    if (typing(document.activeElement)) return;
    focusCriterion(firstUnanswered());
  }

  // The next item arrives by htmx: start again on the new panel, once, when it has settled.
  document.addEventListener("htmx:afterSettle", function (event) {
    var panel = document.getElementById("panel");
    var elt = event.detail && event.detail.elt;
    if (panel && elt && (elt === panel || panel.contains(elt))) start();
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
