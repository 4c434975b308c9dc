// cliprobe report: sortable / filterable tables, full-size images, Vega-Lite charts.
// Runs after the vega-embed bundle; uses nothing from the network.
(function () {
  "use strict";

  // --- tables: click a header to sort the rows of each metric family by that column -------
  function cellValue(row, column) {
    var cell = row.children[column];
    if (!cell) return NaN;
    var value = cell.getAttribute("data-value");
    if (value === null) return cell.textContent.trim().toLowerCase();
    return value === "" ? NaN : parseFloat(value);
  }
  function compare(a, b, descending) {
    var aMissing = typeof a === "number" && isNaN(a), bMissing = typeof b === "number" && isNaN(b);
    if (aMissing || bMissing) return aMissing === bMissing ? 0 : aMissing ? 1 : -1; // empty last
    var order = a < b ? -1 : a > b ? 1 : 0;
    return descending ? -order : order;
  }
  function sortTable(table, header) {
    var column = parseInt(header.getAttribute("data-sort"), 10);
    var descending = header.getAttribute("aria-sort") === "ascending";
    table.querySelectorAll("th[data-sort]").forEach(function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
    table.querySelectorAll("tbody").forEach(function (body) {
      var rows = Array.prototype.filter.call(body.rows, function (r) { return !r.classList.contains("family"); });
      rows.sort(function (a, b) { return compare(cellValue(a, column), cellValue(b, column), descending); });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("th[data-sort]").forEach(function (header) {
      header.setAttribute("tabindex", "0");
      header.addEventListener("click", function () { sortTable(table, header); });
      header.addEventListener("keydown", function (e) { if (e.key === "Enter") sortTable(table, header); });
    });
  });

  // --- filters: rows by metric name, columns by manipulation name --------------------------
  function matches(text, query) { return text.toLowerCase().indexOf(query.trim().toLowerCase()) >= 0; }
  document.querySelectorAll("input[data-filter-rows]").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-filter-rows"));
    input.addEventListener("input", function () {
      table.querySelectorAll("tbody").forEach(function (body) {
        var shown = 0;
        Array.prototype.forEach.call(body.rows, function (row) {
          if (row.classList.contains("family")) return;
          var keep = matches(row.getAttribute("data-search") || row.textContent, input.value);
          row.hidden = !keep;
          if (keep) shown += 1;
        });
        body.hidden = shown === 0;
      });
    });
  });
  document.querySelectorAll("input[data-filter-cols]").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-filter-cols"));
    input.addEventListener("input", function () {
      var hidden = {};
      table.querySelectorAll("thead th[data-col]").forEach(function (th) {
        var name = th.getAttribute("data-col");  // "<manipulation>" or "<manipulation>\u001e<i>"
        hidden[name] = !matches(name.split("\u001e")[0], input.value) &&
          th.getAttribute("data-keep") === null;
      });
      table.querySelectorAll("[data-col]").forEach(function (el) {
        el.hidden = hidden[el.getAttribute("data-col")] === true;
      });
      table.querySelectorAll("thead th[data-group]").forEach(function (th) {
        var members = th.getAttribute("data-group").split("\u001f");
        var visible = members.filter(function (m) { return !hidden[m]; }).length;
        th.hidden = visible === 0;
        th.colSpan = Math.max(visible, 1);
      });
      table.querySelectorAll("tr.family th").forEach(function (th) {
        th.colSpan = 1 + table.querySelectorAll("thead th[data-col]:not([hidden])").length;
      });
    });
  });

  // --- metric names: their registry entry in a floating box on hover / focus ---------------
  var tip = document.createElement("div");
  tip.id = "metric-tip";
  tip.setAttribute("role", "tooltip");
  tip.hidden = true;
  document.body.appendChild(tip);
  function showTip(name) {
    var source = name.querySelector(".tip");
    if (!source) return;
    tip.innerHTML = source.innerHTML;
    tip.hidden = false;
    var r = name.getBoundingClientRect(), width = tip.offsetWidth, height = tip.offsetHeight;
    var top = r.bottom + 6 + height > window.innerHeight ? r.top - height - 6 : r.bottom + 6;
    tip.style.left = Math.max(4, Math.min(r.left, window.innerWidth - width - 8)) + "px";
    tip.style.top = Math.max(4, top) + "px";
  }
  function hideTip() { tip.hidden = true; }
  document.querySelectorAll(".metric").forEach(function (name) {
    name.addEventListener("mouseenter", function () { showTip(name); });
    name.addEventListener("focus", function () { showTip(name); });
    name.addEventListener("mouseleave", hideTip);
    name.addEventListener("blur", hideTip);
  });
  window.addEventListener("scroll", hideTip, { passive: true });

  // --- images open full size on click (Escape or a click closes) ----------------------------
  var box = document.getElementById("lightbox");
  if (box) {
    var big = box.querySelector("img"), caption = box.querySelector("p");
    document.querySelectorAll("img.zoomable").forEach(function (img) {
      img.setAttribute("tabindex", "0");
      function open() {
        big.src = img.src;
        big.alt = img.alt;
        caption.textContent = img.getAttribute("data-caption") || img.alt;
        box.showModal();
      }
      img.addEventListener("click", open);
      img.addEventListener("keydown", function (e) { if (e.key === "Enter") open(); });
    });
    box.addEventListener("click", function () { box.close(); });
  }

  // --- Vega-Lite charts: the spec sits in a JSON script next to its container ---------------
  document.querySelectorAll("div.vega[data-spec]").forEach(function (el) {
    var spec = JSON.parse(document.getElementById(el.getAttribute("data-spec")).textContent);
    window.vegaEmbed(el, spec, { actions: false, renderer: "svg" }).then(function () {
      el.setAttribute("data-rendered", "true");
    }).catch(function (error) { console.error("chart " + el.id + ": " + error); });
  });
})();
