"""The status page's style and script (one self-contained file: nothing is loaded), and the
content security policy that names them by their hashes."""

from __future__ import annotations

from cronflow.model import RunStatus

_COLOURS = {
    RunStatus.SUCCESS: ("#2e7d32", "#fff"),
    RunStatus.FAILED: ("#c62828", "#fff"),
    RunStatus.TIMED_OUT: ("#ad1457", "#fff"),
    RunStatus.UPSTREAM_FAILED: ("#e65100", "#fff"),
    RunStatus.SKIPPED: ("#607d8b", "#fff"),
    RunStatus.MISSED: ("#9e9e9e", "#000"),
    RunStatus.RUNNING: ("#1565c0", "#fff"),
    RunStatus.WAITING: ("#6a1b9a", "#fff"),
    RunStatus.ABANDONED: ("#4e342e", "#fff"),
    RunStatus.INTERRUPTED: ("#f9a825", "#000"),
}
_STATUS_STYLE = "".join(
    f".s-{status}{{background:{back};color:{fore}}}"
    f"svg .node.s-{status} rect{{fill:{back}}}svg .node.s-{status} text{{fill:{fore}}}"
    for status, (back, fore) in _COLOURS.items()
)
STYLE = (
    "body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;padding:12px;max-width:1400px;"
    "color:#1b1b1b;background:#fafafa}"
    "h1{font-size:20px;margin:0 0 6px}h1 small{font-weight:normal;color:#555;font-size:13px}"
    "h2{font-size:16px;margin:18px 0 6px}"
    ".badge{display:inline-block;padding:2px 8px;border-radius:10px;margin-right:4px;"
    "border:1px solid #ccc;background:#fff}.badge.failing b{color:#c62828}"
    ".badge.running b{color:#1565c0}.badge.healthy b{color:#2e7d32}"
    ".warn{color:#8a4b00;background:#fff4e0;border-left:4px solid #f9a825;padding:4px 8px}"
    ".hint,footer{color:#555;font-size:12px}code{font-size:12px}"
    ".scroll{overflow-x:auto}"
    "table.grid{border-collapse:collapse;width:100%;background:#fff}"
    ".grid th,.grid td{border-bottom:1px solid #e0e0e0;padding:6px 8px;text-align:left;"
    "vertical-align:top}"
    ".grid th{font-size:12px;color:#555;white-space:nowrap}"
    ".name{word-break:break-all}.about,.schedule,.reason{font-size:12px;color:#555}"
    ".reason{color:#8e1b1b;max-width:32em;overflow-wrap:anywhere}"
    ".word{padding:1px 6px;border-radius:4px;white-space:nowrap}.word.s-none{color:#555}"
    ".paused,.overdue{color:#8a6d00;font-weight:bold}"
    ".streak{font-weight:bold;color:#c62828;text-align:center}.grid time{white-space:nowrap}"
    ".runs{white-space:nowrap}"
    ".cell{display:inline-block;width:14px;height:20px;margin:1px;border-radius:3px;"
    "text-align:center;font:bold 12px/20px ui-monospace,monospace;cursor:default}"
    ".cell:focus{outline:2px solid #000;outline-offset:1px}"
    ".none{color:#888}tr[hidden]{display:none}details{font-size:12px}"
    ".a-fresh{background:#2e7d32;color:#fff}.a-stale{background:#c62828;color:#fff}.a-new{background:#1565c0;color:#fff}"
    ".a-external{background:#eceff1;color:#333}"
    "pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f3f3f3;padding:4px;margin:2px 0;"
    "max-width:40em;max-height:12em;overflow:auto}"
    "#filters{margin:10px 0}#filters input,#filters select{font:inherit;padding:2px 4px}"
    "#shown{color:#555;font-size:12px;margin-left:8px}"
    "#detail{position:fixed;z-index:2;max-width:28em;background:#222;color:#fff;padding:6px 8px;"
    "border-radius:4px;font-size:12px;white-space:pre-wrap;pointer-events:none}"
    "svg.graph{background:#fff;border:1px solid #e0e0e0}"
    "svg .edges path{fill:none;stroke:#777;stroke-width:1.3;marker-end:url(#arrow)}"
    "svg .edges path.long{stroke:#999;stroke-dasharray:4 2}"
    "svg .edges path.rule{stroke:#e65100;stroke-dasharray:6 3}"
    "svg marker path{fill:#777}svg .node rect{stroke:#333;stroke-width:.6}"
    "svg .node text{font:12px system-ui,sans-serif}svg .node.s-none rect{fill:#eceff1}"
    "@media (max-width:700px){.grid thead{display:none}"
    ".grid,.grid tbody,.grid tr,.grid td{display:block;width:auto}"
    ".grid tr{border-bottom:2px solid #ccc;padding:4px 0}.grid td{border:0;padding:2px 4px}"
    ".grid td[data-label]:not(:first-child)::before{content:attr(data-label) ': ';"
    "color:#555;font-size:12px}"
    ".grid td.streak:empty{display:none}.runs{white-space:normal}}" + _STATUS_STYLE
)
# Reads only the page: no data is ever written into this script.
SCRIPT = """
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var jobBox = document.getElementById("filter-job");
  var stateBox = document.getElementById("filter-state");
  var shown = document.getElementById("shown");
  function filter() {
    var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-job]"));
    var text = jobBox.value.toLowerCase(), state = stateBox.value, count = 0;
    rows.forEach(function (row) {
      var show = row.dataset.job.toLowerCase().indexOf(text) >= 0 &&
        (state === "all" || row.dataset.state === state);
      row.hidden = !show;
      if (show) { count += 1; }
    });
    shown.textContent = count + " of " + rows.length + " jobs";
  }
  form.hidden = false;
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  jobBox.addEventListener("input", filter);
  stateBox.addEventListener("change", filter);
  filter();

  var detail = document.getElementById("detail");
  function show(cell) {
    detail.textContent = cell.dataset.detail;
    var box = cell.getBoundingClientRect();
    detail.hidden = false;
    var left = Math.min(box.left, window.innerWidth - detail.offsetWidth - 8);
    detail.style.left = Math.max(4, left) + "px";
    var below = box.bottom + 6;
    detail.style.top = (below + detail.offsetHeight > window.innerHeight ?
      box.top - detail.offsetHeight - 6 : below) + "px";
  }
  function hide() { detail.hidden = true; }
  function bind() {
  document.querySelectorAll(".cell:not([tabindex])").forEach(function (cell) {
    cell.tabIndex = 0;
    cell.dataset.detail = cell.title;
    cell.removeAttribute("title");
    cell.setAttribute("aria-label", cell.dataset.detail);
    ["mouseenter", "focus"].forEach(function (on) {
      cell.addEventListener(on, function () { show(cell); });
    });
    ["mouseleave", "blur"].forEach(function (on) { cell.addEventListener(on, hide); });
  });
  }
  bind();

  function span(seconds) {
    var s = Math.abs(Math.round(seconds));
    if (s < 60) { return s + "s"; }
    var m = Math.floor(s / 60);
    if (m < 60) { return m + "m"; }
    var h = Math.floor(m / 60);
    if (h < 48) { return h + "h" + (m % 60 ? (m % 60) + "m" : ""); }
    return Math.floor(h / 24) + "d" + (h % 24 ? (h % 24) + "h" : "");
  }
  function relative() {
    var now = Date.now();
    var times = document.querySelectorAll("time[datetime]");
    var tick = document.querySelector(".tick time");
    times.forEach(function (element) {
      var seconds = (Date.parse(element.getAttribute("datetime")) - now) / 1000;
      if (!element.dataset.absolute) {
        element.dataset.absolute = element.textContent;
        element.title = element.title || element.textContent;
      }
      element.textContent = seconds > 0 ? "in " + span(seconds) : span(seconds) + " ago";
    });
    if (tick) {
      var stale = (now - Date.parse(tick.getAttribute("datetime"))) / 1000 > 300;
      document.body.classList.toggle("stale", stale);
      document.getElementById("stale-warning").hidden = !stale;
    }
  }
  relative();
  setInterval(relative, 15000);
  // `cronflow serve` swaps in a fresh grid when something was recorded: apply it all again.
  document.addEventListener("cronflow:updated", function () { filter(); bind(); relative(); });
})();
"""


def digest(text: str) -> str:
    import base64
    import hashlib

    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# The page's own style and script, named by their hashes: nothing else may run or style it,
# nor change where its relative links point or send a form anywhere.
POLICY = (
    f"default-src 'none'; style-src {digest(STYLE)}; script-src {digest(SCRIPT)}; "
    "base-uri 'none'; form-action 'none'"
)
