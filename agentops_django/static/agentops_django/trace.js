/* The trace page: selecting a span loads its details without reloading the page.
 *
 * Progressive enhancement only: every span label is a plain link (?span=<id>) that
 * works without this script. The fragment fetched here is rendered by Django with
 * autoescaping from our own URL; no value from a span is ever interpreted here.
 */
(function () {
  "use strict";

  function init() {
    var root = document.getElementById("ao-trace");
    var panel = document.getElementById("ao-detail");
    if (!root || !panel) {
      return;
    }

    function select(row) {
      var previous = root.querySelectorAll(".ao-row.ao-selected");
      for (var i = 0; i < previous.length; i++) {
        previous[i].classList.remove("ao-selected");
      }
      if (row) {
        row.classList.add("ao-selected");
      }
    }

    root.addEventListener("click", function (event) {
      var link = event.target.closest("a.ao-label");
      if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
        return;
      }
      var row = link.closest(".ao-row");
      var list = link.closest(".ao-rows");
      var spanId = row && row.getAttribute("data-span-id");
      // Only well-formed span ids are fetched; anything else keeps the plain link.
      if (!list || !spanId || !/^[0-9a-fA-F]{16}$/.test(spanId)) {
        return;
      }
      var url = list.getAttribute("data-span-url") + spanId + "/";
      event.preventDefault();
      select(row);
      panel.setAttribute("aria-busy", "true");
      fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "XMLHttpRequest" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.text();
        })
        .then(function (html) {
          panel.innerHTML = html;
          panel.removeAttribute("aria-busy");
          if (window.history && window.history.replaceState) {
            window.history.replaceState(null, "", link.getAttribute("href").split("#")[0]);
          }
          if (panel.getBoundingClientRect().top < 0) {
            panel.scrollIntoView({ block: "start" });
          }
        })
        .catch(function () {
          window.location.href = link.href;
        });
    });

    // Arrow keys move the selection through the rows.
    root.addEventListener("keydown", function (event) {
      if (event.key !== "ArrowDown" && event.key !== "ArrowUp") {
        return;
      }
      var current = event.target.closest && event.target.closest(".ao-row");
      if (!current) {
        return;
      }
      var next = event.key === "ArrowDown" ? current.nextElementSibling : current.previousElementSibling;
      var label = next && next.querySelector("a.ao-label");
      if (label) {
        event.preventDefault();
        label.focus();
        label.click();
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
