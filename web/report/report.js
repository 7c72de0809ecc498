// Draws a qmtl report's charts from the JSON in #report-data with uPlot.
// #status says what was drawn (data-charts, data-series) or what failed
// (data-errors): the browser tests read it.
(function () {
  "use strict";
  var status = document.getElementById("status");
  var errors = [];
  function fail(message) {
    errors.push(String(message));
    status.dataset.errors = String(errors.length);
    status.textContent = "error: " + errors.join("; ");
    status.hidden = false;
  }
  window.addEventListener("error", function (e) { fail(e.message); });

  var shadeColours = { validation: "rgba(120,144,156,0.12)", dryrun: "rgba(241,194,50,0.14)", live: "rgba(56,161,105,0.14)" };
  var lineColours = ["#2b6cb0", "#38a169", "#d69e2e", "#805ad5", "#dd6b20", "#319795", "#e53e3e"];

  // Shades the report's periods behind a chart.
  function shadesPlugin(shades) {
    return {
      hooks: {
        drawClear: [function (u) {
          var ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
          var xMin = u.scales.x.min, xMax = u.scales.x.max;
          shades.forEach(function (s) {
            var from = Math.max(s.from, xMin), to = Math.min(s.to === null ? xMax : s.to, xMax);
            if (to <= from) return;
            var x0 = u.valToPos(from, "x", true), x1 = u.valToPos(to, "x", true);
            ctx.fillStyle = shadeColours[s.kind] || "rgba(0,0,0,0.06)";
            ctx.fillRect(x0, top, x1 - x0, height);
          });
        }]
      }
    };
  }

  function width(el) { return Math.max(360, el.clientWidth || 900); }
  // Percent labels with as many decimals as the axis needs to tell them apart.
  function percents(u, vals) {
    var span = Math.max.apply(null, vals.map(Math.abs));
    var decimals = span >= 0.1 ? 0 : span >= 0.01 ? 1 : span >= 0.001 ? 2 : 3;
    return vals.map(function (v) { return (100 * v).toFixed(decimals) + "%"; });
  }
  // Wide enough for equity in the millions.
  var valueAxis = { size: 80 };
  var drawn = 0, series = 0;

  function plot(el, height, seriesOpts, data, extra) {
    var opts = Object.assign({ width: width(el), height: height, series: [{}].concat(seriesOpts),
                               scales: { x: { time: true } }, legend: { live: true } }, extra || {});
    var u = new uPlot(opts, data, el);
    drawn += 1;
    series += seriesOpts.length;
    window.addEventListener("resize", function () { u.setSize({ width: width(el), height: height }); });
    return u;
  }

  function draw(data) {
    if (data.equity.length) {
      var tables = data.equity.map(function (s) { return [s.ts, s.v]; });
      var joined = tables.length === 1 ? tables[0] : uPlot.join(tables);
      plot(document.getElementById("equity"), 300,
           data.equity.map(function (s, i) {
             return { label: s.name, stroke: lineColours[i % lineColours.length], width: 1.5 };
           }),
           joined, { plugins: [shadesPlugin(data.shades)], axes: [{}, valueAxis] });
    }
    if (data.drawdown) {
      plot(document.getElementById("drawdown"), 150,
           [{ label: "drawdown", stroke: "#c53030", fill: "rgba(197,48,48,0.15)",
              value: function (u, v) { return v === null ? "-" : (-100 * v).toFixed(2) + " %"; } }],
           [data.drawdown.ts, data.drawdown.v.map(function (v) { return -v; })],
           { plugins: [shadesPlugin(data.shades)],
             axes: [{}, { size: valueAxis.size, values: percents }] });
    }
    if (data.price) {
      var buys = data.trades.filter(function (t) { return t.buy; });
      var sells = data.trades.filter(function (t) { return !t.buy; });
      var table = uPlot.join([
        [data.price.ts, data.price.v],
        [buys.map(function (t) { return t.ts; }), buys.map(function (t) { return t.price; })],
        [sells.map(function (t) { return t.ts; }), sells.map(function (t) { return t.price; })]
      ]);
      var marker = function (colour) {
        return { paths: function () { return null; }, points: { show: true, size: 9, fill: colour, stroke: colour } };
      };
      plot(document.getElementById("price"), 300,
           [{ label: data.price.name, stroke: "#4a5568", width: 1 },
            Object.assign({ label: "buy" }, marker("#2f855a")),
            Object.assign({ label: "sell" }, marker("#c53030"))],
           table, { plugins: [shadesPlugin(data.shades)], axes: [{}, valueAxis] });
    }
  }

  try {
    draw(JSON.parse(document.getElementById("report-data").textContent));
  } catch (e) {
    fail(e && e.message ? e.message : e);
  }
  status.dataset.charts = String(drawn);
  status.dataset.series = String(series);
  if (!errors.length) status.textContent = "drew " + drawn + " charts with " + series + " series";
})();
