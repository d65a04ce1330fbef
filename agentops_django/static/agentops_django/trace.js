/* The trace page: selecting a span loads its details without reloading the page;
 * the waterfall zooms to a time range, collapses subtrees and dims what is off
 * the critical path.
 *
 * Progressive enhancement only: every span label is a plain link (?span=<id>) that
 * works without this script, and the bars are placed by the server. The fragment
 * fetched here is rendered by Django with autoescaping from our own URL; no value
 * from a span is ever interpreted here (only the numeric data-* attributes are read).
 */
(function () {
  "use strict";

  /* The page's own duration format (admin/_page.format_duration). */
  function formatMs(ms) {
    if (ms <= 0) {
      return "0";
    }
    if (ms < 1) {
      return ms.toFixed(2) + " ms";
    }
    if (ms < 10) {
      return ms.toFixed(1) + " ms";
    }
    if (ms < 1000) {
      return ms.toFixed(0) + " ms";
    }
    if (ms < 60000) {
      return (ms / 1000).toFixed(2) + " s";
    }
    var seconds = Math.floor(ms / 1000);
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) {
      return minutes + " min " + String(seconds % 60).padStart(2, "0") + " s";
    }
    return Math.floor(minutes / 60) + " h " + String(minutes % 60).padStart(2, "0") + " min";
  }

  var MIN_BAR_PCT = 0.15;
  var MIN_DRAG_PX = 4;
  var LABEL_WIDTH_KEY = "agentops.trace.labelWidth";

  function init() {
    var root = document.getElementById("ao-trace");
    var panel = document.getElementById("ao-detail");
    var body = document.getElementById("ao-detail-body");
    var waterfall = root && root.querySelector(".ao-waterfall");
    var list = root && root.querySelector(".ao-rows");
    if (!root || !panel || !body || !waterfall || !list) {
      return;
    }
    root.classList.add("ao-js");
    var totalMs = parseFloat(waterfall.getAttribute("data-total-ms")) || 0;
    var rows = Array.prototype.slice.call(list.querySelectorAll("li.ao-row"));
    var geometry = rows.map(function (row) {
      return {
        row: row,
        depth: parseInt(row.getAttribute("data-depth"), 10) || 0,
        begin: parseFloat(row.getAttribute("data-b")) || 0,
        end: parseFloat(row.getAttribute("data-e")) || 0,
        wait: parseFloat(row.getAttribute("data-w")) || 0,
        bar: row.querySelector(".ao-bar"),
        queue: row.querySelector(".ao-wait"),
      };
    });
    var view = { from: 0, to: totalMs };

    // A row followed by a deeper one has children: it gets a collapse toggle.
    for (var k = 0; k + 1 < geometry.length; k++) {
      if (geometry[k + 1].depth > geometry[k].depth) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "ao-toggle";
        button.title = "Collapse or expand what this span contains";
        button.setAttribute("aria-expanded", "true");
        var cell = geometry[k].row.querySelector(".ao-cell");
        cell.insertBefore(button, cell.firstChild);
      }
    }

    /* --- selecting a span ------------------------------------------------------------------ */

    function select(row) {
      var previous = list.querySelectorAll(".ao-row.ao-selected");
      for (var i = 0; i < previous.length; i++) {
        previous[i].classList.remove("ao-selected");
      }
      if (row) {
        row.classList.add("ao-selected");
      }
    }

    /* Brings the details into view: the docked panel (narrow pages) is always in view;
     * the side panel scrolls into view when the page has scrolled past it. */
    function reveal() {
      var box = panel.getBoundingClientRect();
      var height = window.innerHeight || document.documentElement.clientHeight;
      if (box.top < 0 || box.top > height - 40) {
        panel.scrollIntoView({ block: "start" });
      }
      panel.scrollTop = 0;
    }

    function showSpan(row, link) {
      var spanId = row.getAttribute("data-span-id");
      var url = list.getAttribute("data-span-url") + spanId + "/";
      select(row);
      panel.classList.add("ao-detail--open");
      panel.setAttribute("aria-busy", "true");
      fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "XMLHttpRequest" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.text();
        })
        .then(function (html) {
          body.innerHTML = html;
          var self = body.querySelector(".ao-self");
          if (self && row.getAttribute("data-self")) {
            self.textContent = row.getAttribute("data-self");
          }
          panel.removeAttribute("aria-busy");
          if (window.history && window.history.replaceState) {
            window.history.replaceState(null, "", link.getAttribute("href").split("#")[0]);
          }
          reveal();
        })
        .catch(function () {
          window.location.href = link.href;
        });
    }

    root.addEventListener("click", function (event) {
      var toggle = event.target.closest(".ao-toggle");
      if (toggle) {
        event.preventDefault();
        collapse(toggle.closest(".ao-row"), toggle.getAttribute("aria-expanded") === "true");
        return;
      }
      var close = event.target.closest(".ao-detail-close");
      if (close && event.button === 0) {
        event.preventDefault();
        panel.classList.remove("ao-detail--open");
        select(null);
        return;
      }
      var link = event.target.closest("a.ao-label");
      if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
        return;
      }
      var row = link.closest(".ao-row");
      var spanId = row && row.getAttribute("data-span-id");
      // Only well-formed span ids are fetched; anything else keeps the plain link.
      if (!link.closest(".ao-rows") || !spanId || !/^[0-9a-fA-F]{16}$/.test(spanId)) {
        return;
      }
      event.preventDefault();
      showSpan(row, link);
    });

    // Arrow keys move the selection through the visible rows.
    root.addEventListener("keydown", function (event) {
      if (event.key !== "ArrowDown" && event.key !== "ArrowUp") {
        return;
      }
      var current = event.target.closest && event.target.closest(".ao-row");
      if (!current) {
        return;
      }
      var next = current;
      do {
        next = event.key === "ArrowDown" ? next.nextElementSibling : next.previousElementSibling;
      } while (next && next.classList.contains("ao-hidden"));
      var label = next && next.querySelector("a.ao-label");
      if (label) {
        event.preventDefault();
        label.focus();
        label.click();
      }
    });

    /* --- collapsing subtrees ---------------------------------------------------------------- */

    /* Rows are in depth-first order: a subtree is the run of deeper rows after its root.
     * Expanding shows it again, except inside subtrees still collapsed themselves. */
    function collapse(row, hide) {
      var index = rows.indexOf(row);
      if (index < 0) {
        return;
      }
      var depth = geometry[index].depth;
      row.querySelector(".ao-toggle").setAttribute("aria-expanded", hide ? "false" : "true");
      row.classList.toggle("ao-collapsed", hide);
      var closedBelow = Infinity;
      for (var i = index + 1; i < geometry.length && geometry[i].depth > depth; i++) {
        var g = geometry[i];
        if (hide) {
          g.row.classList.add("ao-hidden");
          continue;
        }
        if (g.depth > closedBelow) {
          continue;
        }
        closedBelow = g.row.classList.contains("ao-collapsed") ? g.depth : Infinity;
        g.row.classList.remove("ao-hidden");
      }
      // After the rows have changed, not in the click: drawing reads the layout.
      window.requestAnimationFrame(drawMinimap);
    }

    /* --- the critical path -------------------------------------------------------------------- */

    var criticalToggle = root.querySelector(".ao-critical-toggle");
    function applyCritical() {
      waterfall.classList.toggle("ao-show-critical", !!(criticalToggle && criticalToggle.checked));
    }
    if (criticalToggle) {
      criticalToggle.addEventListener("change", applyCritical);
      applyCritical();
    }

    /* --- zoom ------------------------------------------------------------------------------------ */

    var axisTrack = root.querySelector(".ao-axis-track");
    var ticks = Array.prototype.slice.call(root.querySelectorAll(".ao-axis-track .ao-tick"));
    var overviewTrack = root.querySelector(".ao-zoomstrip-track");
    var canvas = root.querySelector(".ao-minimap");
    var windowBox = root.querySelector(".ao-window");
    var reset = root.querySelector(".ao-zoom-reset");
    var rangeNote = root.querySelector(".ao-zoom-range");

    function place(element, from, to, span) {
      if (!element) {
        return;
      }
      var left = ((from - view.from) / span) * 100;
      var right = ((to - view.from) / span) * 100;
      if (right < 0 || left > 100) {
        element.style.display = "none";
        return;
      }
      left = Math.max(0, left);
      var width = Math.max(MIN_BAR_PCT, Math.min(100, right) - left);
      element.style.display = "";
      element.style.left = Math.min(left, 100 - width).toFixed(3) + "%";
      element.style.width = width.toFixed(3) + "%";
    }

    function applyZoom() {
      var span = Math.max(view.to - view.from, 1e-3);
      for (var i = 0; i < geometry.length; i++) {
        var g = geometry[i];
        place(g.bar, g.begin, g.end, span);
        if (g.queue) {
          place(g.queue, g.begin - g.wait, g.begin, span);
        }
      }
      for (var t = 0; t < ticks.length; t++) {
        var at = view.from + (span * t) / (ticks.length - 1);
        ticks[t].textContent = (view.from > 0 ? "+" : "") + formatMs(at);
      }
      var zoomed = view.from > 0 || view.to < totalMs;
      waterfall.classList.toggle("ao-zoomed", zoomed);
      if (reset) {
        reset.hidden = !zoomed;
      }
      if (rangeNote) {
        rangeNote.textContent = zoomed
          ? "Showing +" + formatMs(view.from) + " to +" + formatMs(view.to) + " of " + formatMs(totalMs) + "."
          : "";
      }
      if (windowBox && totalMs > 0) {
        windowBox.style.left = ((view.from / totalMs) * 100).toFixed(3) + "%";
        windowBox.style.width = (((view.to - view.from) / totalMs) * 100).toFixed(3) + "%";
      }
    }

    function zoomTo(from, to) {
      from = Math.max(0, from);
      to = Math.min(totalMs, to);
      if (to - from < 1e-3) {
        return;
      }
      view.from = from;
      view.to = to;
      applyZoom();
    }

    /* Drag across a track to select a time range; `full` tracks show the whole trace. */
    function draggable(track, full) {
      if (!track) {
        return;
      }
      var selection = track.querySelector(".ao-selection");
      var start = null;
      function toMs(x) {
        var box = track.getBoundingClientRect();
        var fraction = Math.max(0, Math.min(1, (x - box.left) / Math.max(box.width, 1)));
        var from = full ? 0 : view.from;
        var to = full ? totalMs : view.to;
        return from + fraction * (to - from);
      }
      function mark(x) {
        var box = track.getBoundingClientRect();
        var a = Math.max(0, Math.min(start, x) - box.left);
        var b = Math.min(box.width, Math.max(start, x) - box.left);
        selection.style.left = a + "px";
        selection.style.width = Math.max(0, b - a) + "px";
      }
      track.addEventListener("pointerdown", function (event) {
        if (event.button !== 0) {
          return;
        }
        start = event.clientX;
        track.setPointerCapture(event.pointerId);
        mark(start);
        selection.hidden = false;
        event.preventDefault();
      });
      track.addEventListener("pointermove", function (event) {
        if (start !== null) {
          mark(event.clientX);
        }
      });
      function finish(event) {
        if (start === null) {
          return;
        }
        var end = event.clientX;
        selection.hidden = true;
        if (Math.abs(end - start) >= MIN_DRAG_PX) {
          zoomTo(toMs(Math.min(start, end)), toMs(Math.max(start, end)));
        }
        start = null;
      }
      track.addEventListener("pointerup", finish);
      track.addEventListener("pointercancel", function () {
        selection.hidden = true;
        start = null;
      });
    }

    /* The overview: every visible row as a thin line over the whole trace. */
    function drawMinimap() {
      if (!canvas || !canvas.getContext || !totalMs) {
        return;
      }
      var width = Math.max(1, Math.round(canvas.clientWidth));
      var height = canvas.height;
      canvas.width = width;
      var context = canvas.getContext("2d");
      context.clearRect(0, 0, width, height);
      var visible = geometry.filter(function (g) {
        return !g.row.classList.contains("ao-hidden");
      });
      var step = height / Math.max(visible.length, 1);
      var style = window.getComputedStyle(waterfall);
      var normal = style.getPropertyValue("--ao-minimap-fg").trim() || "#7d8793";
      var error = style.getPropertyValue("--ao-error").trim() || "#ba2121";
      for (var i = 0; i < visible.length; i++) {
        var g = visible[i];
        var x = (g.begin / totalMs) * width;
        var w = Math.max(1, ((g.end - g.begin) / totalMs) * width);
        context.fillStyle = g.row.classList.contains("ao-error") ? error : normal;
        context.fillRect(x, i * step, w, Math.max(1, step - (step > 3 ? 1 : 0)));
      }
    }

    if (totalMs > 0 && rows.length) {
      root.querySelector(".ao-toolbar").hidden = false;
      root.querySelector(".ao-zoomstrip").hidden = false;
      draggable(axisTrack, false);
      draggable(overviewTrack, true);
      if (reset) {
        reset.addEventListener("click", function () {
          zoomTo(0, totalMs);
        });
      }
      document.addEventListener("keydown", function (event) {
        if (event.key === "Escape" && (view.from > 0 || view.to < totalMs)) {
          zoomTo(0, totalMs);
        }
      });
      drawMinimap();
      applyZoom();
      window.addEventListener("resize", drawMinimap);
    }

    /* --- a resizable name column ---------------------------------------------------------------- */

    var handle = root.querySelector(".ao-resize");
    if (handle) {
      handle.hidden = false;
      var saved = parseFloat(window.localStorage && window.localStorage.getItem(LABEL_WIDTH_KEY));
      if (saved > 0) {
        waterfall.style.setProperty("--ao-label-w", saved + "px");
      }
      var grabbed = null;
      var startWidth = 0;
      handle.addEventListener("pointerdown", function (event) {
        // The column follows the pointer from where it was grabbed (no jump).
        grabbed = event.clientX;
        startWidth = handle.parentElement.getBoundingClientRect().width;
        handle.setPointerCapture(event.pointerId);
        event.preventDefault();
        event.stopPropagation();
      });
      handle.addEventListener("pointermove", function (event) {
        if (grabbed === null) {
          return;
        }
        var limit = waterfall.clientWidth - 200;
        var width = Math.max(140, Math.min(limit, startWidth + event.clientX - grabbed));
        waterfall.style.setProperty("--ao-label-w", width + "px");
      });
      handle.addEventListener("pointerup", function () {
        if (grabbed === null) {
          return;
        }
        grabbed = null;
        var width = parseFloat(waterfall.style.getPropertyValue("--ao-label-w"));
        if (width > 0 && window.localStorage) {
          window.localStorage.setItem(LABEL_WIDTH_KEY, String(width));
        }
        drawMinimap();
      });
    }

    var selected = list.querySelector(".ao-row.ao-selected");
    if (selected && panel.classList.contains("ao-detail--open")) {
      reveal();
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
