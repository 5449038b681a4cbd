/* unspin report: tabs, span details, copy and download. The same script for the CLI's page and the
   web page; without it every part of the report is shown in turn. No external resources. */
(function () {
  "use strict";

  function tipInViewport(button) {
    var tip = button.querySelector(".us-tip");
    if (!tip) return;
    tip.style.left = "0px";
    var rect = tip.getBoundingClientRect();
    var room = document.documentElement.clientWidth - 8;
    var shift = 0;
    if (rect.right > room) shift = room - rect.right;
    if (rect.left + shift < 8) shift = 8 - rect.left;
    tip.style.left = shift + "px";
  }

  function rows(data) {
    var out = [["start", "end", "observed", "proposed_original", "confidence", "p_substituted", "sources"]];
    // The table's rows: the suspicious spans (a weak guess on a word that reads genuine is left out).
    (data.spans || []).filter(function (s) { return s.suspect !== false; }).forEach(function (s) {
      var ev = s.evidence || {};
      out.push([s.start, s.end, s.text, s.suggestion === null ? "" : s.suggestion, s.confidence,
                ev.p_spun === undefined ? "" : ev.p_spun, (ev.sources || []).join(" ")]);
    });
    return out;
  }

  function csv(table) {
    return table.map(function (r) {
      return r.map(function (v) {
        v = String(v);
        return /[",\n\r]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
      }).join(",");
    }).join("\r\n") + "\r\n";
  }

  function download(name, type, content) {
    var url = URL.createObjectURL(new Blob([content], {type: type}));
    var a = document.createElement("a");
    a.href = url; a.download = name;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  }

  function copyText(text, done) {
    function fallback() {
      var area = document.createElement("textarea");
      area.value = text; area.setAttribute("readonly", "");
      area.style.position = "fixed"; area.style.opacity = "0";
      document.body.appendChild(area); area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      area.remove(); done(ok);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, fallback);
    } else { fallback(); }
  }

  function init(root) {
    if (!root || root.dataset.usReady) return;
    root.dataset.usReady = "1";
    root.classList.add("us-js");
    var dataEl = root.querySelector("script.us-data");
    var data = dataEl ? JSON.parse(dataEl.textContent) : {spans: []};
    var tabs = Array.prototype.slice.call(root.querySelectorAll(".us-tab"));
    var status = root.querySelector(".us-status");

    function select(tab, focus) {
      tabs.forEach(function (t) {
        var on = t === tab;
        t.setAttribute("aria-selected", on ? "true" : "false");
        t.tabIndex = on ? 0 : -1;
        var panel = root.querySelector("#" + t.getAttribute("aria-controls"));
        if (panel) panel.hidden = !on;
      });
      if (focus) tab.focus();
    }
    tabs.forEach(function (tab, i) {
      tab.addEventListener("click", function () { select(tab, false); });
      tab.addEventListener("keydown", function (ev) {
        var next = null;
        if (ev.key === "ArrowRight") next = tabs[(i + 1) % tabs.length];
        else if (ev.key === "ArrowLeft") next = tabs[(i - 1 + tabs.length) % tabs.length];
        else if (ev.key === "Home") next = tabs[0];
        else if (ev.key === "End") next = tabs[tabs.length - 1];
        if (next) { ev.preventDefault(); select(next, true); }
      });
    });
    if (tabs.length) select(tabs[0], false);

    var spans = Array.prototype.slice.call(root.querySelectorAll(".us-span"));
    function closeAll(except) {
      spans.forEach(function (s) {
        if (s !== except) { s.classList.remove("us-open"); s.setAttribute("aria-expanded", "false"); }
      });
    }
    spans.forEach(function (s) {
      s.setAttribute("aria-expanded", "false");
      s.addEventListener("click", function () {
        var open = !s.classList.contains("us-open");
        closeAll(s);
        s.classList.toggle("us-open", open);
        s.setAttribute("aria-expanded", open ? "true" : "false");
        if (open) tipInViewport(s);
      });
      s.addEventListener("focus", function () { tipInViewport(s); });
      s.addEventListener("mouseenter", function () { tipInViewport(s); });
      s.addEventListener("keydown", function (ev) {
        if (ev.key === "Escape") { closeAll(null); s.blur(); }
      });
    });
    document.addEventListener("click", function (ev) {
      if (!ev.target.closest || !ev.target.closest(".us-span")) closeAll(null);
    });

    var base = (data.file || "unspin-report").replace(/\.[^.\/]*$/, "");
    Array.prototype.forEach.call(root.querySelectorAll(".us-download"), function (b) {
      b.addEventListener("click", function () {
        if (b.dataset.format === "csv") download(base + "-changes.csv", "text/csv", csv(rows(data)));
        else download(base + "-result.json", "application/json", JSON.stringify(data, null, 1));
      });
    });
    var copy = root.querySelector(".us-copy");
    if (copy) copy.addEventListener("click", function () {
      var tsv = rows(data).map(function (r) { return r.join("\t"); }).join("\n");
      copyText(tsv, function (ok) { if (status) status.textContent = ok ? "Copied." : "Copy failed: use a download."; });
    });

    Array.prototype.forEach.call(root.querySelectorAll("iframe.us-alignment"), function (frame) {
      function fit() {
        try {
          frame.style.height = "150px";  // shrink first: a document is never shorter than its frame
          var h = frame.contentDocument.documentElement.scrollHeight;
          if (h) frame.style.height = Math.min(h + 4, 4000) + "px";
        } catch (e) { /* keep the default height */ }
      }
      frame.addEventListener("load", fit);
      window.addEventListener("resize", fit);
      fit();
    });
  }

  window.unspinReport = init;
  function initAll() { Array.prototype.forEach.call(document.querySelectorAll(".us-report"), init); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", initAll);
  else initAll();
})();
