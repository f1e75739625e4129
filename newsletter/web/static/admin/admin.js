/* Dashboard charts: reads the page's JSON (script#chart-data) and draws it with Chart.js. No build step. */
(function () {
  "use strict";
  var PALETTE = ["#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2", "#dc2626", "#4b5563"];
  var SIGN_ON = "#c2410c";

  function data(id) {
    var el = document.getElementById(id || "chart-data");
    return el ? JSON.parse(el.textContent) : null;
  }

  // The page writes the charts' texts in its language (script#chart-labels); English otherwise.
  var LABELS = null;
  function tr(text) {
    if (LABELS === null) { LABELS = data("chart-labels") || {}; }
    return LABELS[text] || text;
  }

  function base(extra) {
    var options = {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }
    };
    return Object.assign(options, extra || {});
  }

  var builders = {
    timeline: function (d) {
      var t = d.timeline;
      // A line needs two points: when every open and click fell within the first hour (one or two
      // buckets), bars show what a line would leave blank.
      var bars = t.length < 3;
      function series(label, key, color, fill, extra) {
        var set = { label: label, data: t.map(function (p) { return p[key]; }), borderColor: color };
        if (bars) { return Object.assign(set, { backgroundColor: color }); }
        return Object.assign(set, { backgroundColor: fill, fill: !!fill, tension: 0.25, pointRadius: 0 }, extra || {});
      }
      return {
        type: bars ? "bar" : "line",
        data: {
          labels: t.map(function (p) { return p.later ? tr("later") : "+" + p.hour + "h"; }),
          datasets: [
            series(tr("Opens (human)"), "opens", PALETTE[0], "rgba(37,99,235,.12)"),
            series(tr("Opens incl. machine"), "opens_all", "#93c5fd", null, { borderDash: [4, 3] }),
            series(tr("Clicks (human)"), "clicks", SIGN_ON, "rgba(194,65,12,.15)")
          ]
        },
        options: base({ scales: { x: { title: { display: true, text: tr("hours after sending") } }, y: { beginAtZero: true, ticks: { precision: 0 } } } })
      };
    },
    languages: function (d) {
      var langs = Object.keys(d.languages);
      function col(name) { return langs.map(function (l) { return d.languages[l][name]; }); }
      return {
        type: "bar",
        data: {
          labels: langs,
          datasets: [
            { label: tr("Unique opens"), data: col("opens"), backgroundColor: "#93c5fd" },
            { label: tr("Unique clicks"), data: col("clicks"), backgroundColor: PALETTE[0] },
            { label: tr("Sign-on click-throughs"), data: col("sign_on"), backgroundColor: SIGN_ON },
            { label: tr("Sign-ons completed"), data: col("conversions"), backgroundColor: "#059669" }
          ]
        },
        options: base()
      };
    },
    compare: function (d) {
      var occ = d.occurrences;
      return {
        type: "bar",
        data: {
          labels: occ.map(function (o) { return [o.campaign, o.due_at.slice(0, 10)]; }),
          datasets: d.languages.map(function (lang, i) {
            return { label: lang, data: occ.map(function (o) { return o.languages[lang].sign_on; }), backgroundColor: PALETTE[i % PALETTE.length] };
          })
        },
        options: base({ scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } })
      };
    },
    daily: function (d) {
      var days = d.daily;
      return {
        type: "line",
        data: {
          labels: days.map(function (p) { return p.day; }),
          datasets: d.languages.map(function (lang, i) {
            var sum = 0;
            return {
              label: lang,
              data: days.map(function (p) { sum += p[lang] || 0; return sum; }),
              borderColor: PALETTE[i % PALETTE.length], backgroundColor: PALETTE[i % PALETTE.length],
              tension: 0.2, pointRadius: 2
            };
          })
        },
        options: base()
      };
    }
  };

  function draw() {
    var d = data();
    if (!d || typeof Chart === "undefined") { return; }
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = "#374151";
    Chart.defaults.locale = document.documentElement.lang || "en";  // numbers on the axes
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var build = builders[canvas.dataset.chart];
      if (!build) { return; }
      new Chart(canvas, build(d));
      canvas.dataset.drawn = "1";
    });
  }

  document.addEventListener("DOMContentLoaded", draw);
})();
