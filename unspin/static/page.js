/* The web page: send the pasted text or the chosen file to the server, show its report. */
(function () {
  "use strict";
  var form = document.getElementById("us-form");
  var text = document.getElementById("us-text");
  var file = document.getElementById("us-file");
  var clearFile = document.getElementById("us-clear-file");
  var button = document.getElementById("us-check");
  var busy = document.getElementById("us-busy");
  var error = document.getElementById("us-error");
  var result = document.getElementById("us-result");

  function showError(title, detail) {
    error.textContent = "";
    var b = document.createElement("b");
    b.textContent = title;
    error.appendChild(b);
    if (detail) error.appendChild(document.createTextNode(": " + detail));
    error.hidden = false;
  }

  file.addEventListener("change", function () { clearFile.hidden = !file.files.length; });
  clearFile.addEventListener("click", function () { file.value = ""; clearFile.hidden = true; file.focus(); });

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    error.hidden = true;
    var body, type, source;
    if (file.files.length) {
      var f = file.files[0];
      body = f;
      type = /\.html?$/i.test(f.name) ? "text/html" : "text/plain";
      source = f.name;
    } else {
      if (!text.value.trim()) { showError("Nothing to check", "paste a text or choose a file"); text.focus(); return; }
      body = JSON.stringify({text: text.value});
      type = "application/json";
      source = "pasted text";
    }
    button.disabled = true;
    busy.textContent = "Checking\u2026";
    fetch("ui/report?source=" + encodeURIComponent(source), {method: "POST", headers: {"Content-Type": type}, body: body})
      .then(function (response) {
        return response.text().then(function (payload) { return {response: response, payload: payload}; });
      })
      .then(function (r) {
        if (!r.response.ok) {
          var problem = {};
          try { problem = JSON.parse(r.payload); } catch (e) { problem = {title: "Error " + r.response.status}; }
          showError(problem.title || ("Error " + r.response.status), problem.detail || "");
          busy.textContent = "";
          return;
        }
        result.innerHTML = r.payload;
        var report = result.querySelector(".us-report");
        if (report && window.unspinReport) window.unspinReport(report);
        busy.textContent = "Done.";
        result.focus();
      })
      .catch(function (e) { showError("The server could not be reached", String(e)); busy.textContent = ""; })
      .then(function () { button.disabled = false; });
  });
})();
