// agentops_django: the "Live" toggle of the trace list and the overview. When on (remembered per
// page in localStorage) the page reloads every few seconds, but never while the user is busy with
// it: text selected, a form field focused, a row ticked for an action, a button held, or the tab hidden.
(function () {
  "use strict";
  var PERIOD_MS = 5000;
  var box = document.getElementById("ao-live");
  if (!box) {
    return;
  }
  var key = "agentops.live." + (box.getAttribute("data-live-key") || "page");
  var pressed = false;
  var lastInput = 0;
  try {
    box.checked = window.localStorage.getItem(key) === "on";
  } catch (e) {
    box.checked = false;
  }
  box.addEventListener("change", function () {
    try {
      window.localStorage.setItem(key, box.checked ? "on" : "off");
    } catch (e) {
      /* storage refused: the toggle lasts for this page only */
    }
  });
  document.addEventListener("mousedown", function () { pressed = true; });
  document.addEventListener("mouseup", function () { pressed = false; });
  ["keydown", "wheel", "input"].forEach(function (name) {
    document.addEventListener(name, function () { lastInput = Date.now(); }, { passive: true });
  });

  function busy() {
    if (document.hidden || pressed || Date.now() - lastInput < 2000) {
      return true;
    }
    var selection = window.getSelection && window.getSelection();
    if (selection && !selection.isCollapsed && String(selection).length) {
      return true;
    }
    var active = document.activeElement;
    if (active && active !== box && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) {
      return true;
    }
    return document.querySelector("input.action-select:checked, #action-toggle:checked") !== null;
  }

  window.setInterval(function () {
    if (box.checked && !busy()) {
      window.location.reload();
    }
  }, PERIOD_MS);
})();
