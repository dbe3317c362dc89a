// Countdowns to each deadline. The deadline itself is in the page: this only adds "in 3 h 2 min".
// And a diagram wider than the screen scrolls to its first marked step (or its middle).
"use strict";
(function () {
  function left(ms) {
    if (ms <= 0) return "passed";
    var s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
        m = Math.floor(s % 3600 / 60);
    if (d) return "in " + d + " d " + h + " h";
    if (h) return "in " + h + " h " + m + " min";
    if (m) return "in " + m + " min " + (s % 60) + " s";
    return "in " + s + " s";
  }
  function tick() {
    document.querySelectorAll("time[data-due]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      var out = el.parentNode.querySelector(".countdown");
      if (!isNaN(due) && out) out.textContent = "(" + left(due - Date.now()) + ")";
    });
  }
  tick();
  setInterval(tick, 1000);
  document.querySelectorAll(".graph").forEach(function (box) {
    if (box.scrollWidth <= box.clientWidth) return;
    var mark = box.querySelector(".node.here"), middle = box.scrollWidth / 2;
    if (mark) {
      var at = mark.getBoundingClientRect(), frame = box.getBoundingClientRect();
      middle = at.left - frame.left + box.scrollLeft + at.width / 2;
    }
    box.scrollLeft = Math.max(0, middle - box.clientWidth / 2);
  });
})();
