// SAGE report: token tooltips, keyboard moves inside heat-maps, a sortable and filterable table,
// and the "show values" switch. No dependencies; every handler tolerates a page without its element.
(function () {
  "use strict";
  var tip = document.getElementById("tip");

  function showTip(tok) {
    if (!tip || !tok) return;
    tip.textContent = tok.getAttribute("aria-label");
    tip.hidden = false;
    var r = tok.getBoundingClientRect();
    var left = window.scrollX + r.left;
    var maxLeft = window.scrollX + document.documentElement.clientWidth - tip.offsetWidth - 8;
    tip.style.left = Math.max(4, Math.min(left, maxLeft)) + "px";
    tip.style.top = (window.scrollY + r.top - tip.offsetHeight - 6) + "px";
  }
  function hideTip() { if (tip) tip.hidden = true; }

  document.addEventListener("mouseover", function (e) {
    var tok = e.target.closest && e.target.closest(".tok[aria-label]");
    if (tok) showTip(tok);
  });
  document.addEventListener("mouseout", function (e) {
    if (e.target.closest && e.target.closest(".tok")) hideTip();
  });
  document.addEventListener("focusin", function (e) {
    if (e.target.classList && e.target.classList.contains("tok")) showTip(e.target);
  });
  document.addEventListener("focusout", hideTip);

  // A heat-map is one tab stop; arrow keys, Home and End move between its tokens.
  document.querySelectorAll(".heat").forEach(function (heat) {
    var toks = Array.prototype.slice.call(heat.querySelectorAll(".tok"));
    if (!toks.length) return;
    heat.addEventListener("focus", function (e) {
      if (e.target !== heat) return;
      (heat.querySelector(".tok.max") || toks[0]).focus();
    });
    heat.addEventListener("keydown", function (e) {
      var i = toks.indexOf(document.activeElement);
      var j = null;
      if (e.key === "ArrowRight" || e.key === "ArrowDown") j = Math.min(toks.length - 1, i + 1);
      else if (e.key === "ArrowLeft" || e.key === "ArrowUp") j = Math.max(0, i - 1);
      else if (e.key === "Home") j = 0;
      else if (e.key === "End") j = toks.length - 1;
      else if (e.key === "Escape") { hideTip(); heat.focus(); return; }
      if (j === null) return;
      e.preventDefault();
      toks[j].focus();
    });
    // leaving the group by Shift+Tab from a token must not land on the group and bounce back in
    heat.addEventListener("keydown", function (e) {
      if (e.key === "Tab" && e.shiftKey && document.activeElement !== heat) {
        heat.setAttribute("tabindex", "-1");
        setTimeout(function () { heat.setAttribute("tabindex", "0"); }, 0);
      }
    });
  });

  var toggle = document.getElementById("toggle-values");
  if (toggle) {
    toggle.addEventListener("click", function () {
      var on = document.body.classList.toggle("values");
      toggle.setAttribute("aria-pressed", on ? "true" : "false");
    });
  }

  // Sortable table: a heading's button sorts by the cells' data-sort (numbers: empty cells last).
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, col) {
      var btn = th.querySelector("button");
      if (!btn) return;
      btn.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach(function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var numeric = btn.getAttribute("data-type") === "num";
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].getAttribute("data-sort"), y = b.cells[col].getAttribute("data-sort");
          if (numeric) {
            if (x === "" || y === "") return (x === "") - (y === "");
            return asc ? Number(x) - Number(y) : Number(y) - Number(x);
          }
          return asc ? x.localeCompare(y) : y.localeCompare(x);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });

  var filter = document.getElementById("filter");
  var status = document.getElementById("status-filter");
  var table = document.getElementById("features");
  var shown = document.getElementById("shown");
  function applyFilter() {
    if (!table) return;
    var q = filter ? filter.value.trim().toLowerCase() : "";
    var s = status ? status.value : "";
    var rows = table.tBodies[0].rows, n = 0;
    for (var i = 0; i < rows.length; i++) {
      var ok = (!q || rows[i].textContent.toLowerCase().indexOf(q) >= 0) &&
               (!s || rows[i].getAttribute("data-status") === s);
      rows[i].classList.toggle("hidden", !ok);
      if (ok) n++;
    }
    if (shown) shown.textContent = n + " of " + rows.length + " features";
  }
  if (filter) filter.addEventListener("input", applyFilter);
  if (status) status.addEventListener("change", applyFilter);
})();
