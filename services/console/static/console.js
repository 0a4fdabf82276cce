// Charts for the console: each [data-chart] element gets the ECharts chart described by the
// JSON block #chart-<name> beside it. Without ECharts (not installed) the tables stay alone.
// Then, once the charts are painted, each [data-fragment] region fetches its panel from the
// console (same origin, same session) and puts it in place of its [data-fragment-body].
(function () {
  "use strict";
  var locale = document.documentElement.lang === "zh-CN" ? "ZH" : "EN";
  var palette = ["#1f6feb", "#d97706", "#16a34a", "#dc2626", "#7c3aed", "#0891b2", "#6b7280"];

  function options(spec) {
    var twoAxes = spec.series.some(function (s) { return s.axis === 1; });
    var yAxes = [{ type: "value", name: spec.y_names[0] || "", max: spec.y_max === null ? null : spec.y_max }];
    if (twoAxes) {
      yAxes.push({ type: "value", name: spec.y_names[1] || "", max: 100, splitLine: { show: false } });
    }
    return {
      color: palette,
      animation: false,
      aria: { enabled: true },
      tooltip: { trigger: "axis" },
      legend: { type: "scroll", top: 0 },
      grid: { left: 48, right: twoAxes ? 48 : 16, top: 56, bottom: 32, containLabel: true },
      xAxis: spec.x_type === "value"
        ? { type: "value", name: spec.x_name, min: 0, max: 100 }
        : { type: "category", data: spec.x, name: spec.x_name },
      yAxis: yAxes,
      series: spec.series.map(function (s) {
        return {
          name: s.name,
          type: s.type || spec.kind,
          data: s.data,
          yAxisIndex: s.axis || 0,
          connectNulls: true,
          showSymbol: spec.x_type !== "value",
          lineStyle: s.dashed ? { type: "dashed", width: 1 } : undefined,
          areaStyle: s.area ? { opacity: 0.15 } : undefined,
          symbol: s.dashed ? "none" : undefined
        };
      })
    };
  }

  function draw() {
    if (typeof window.echarts === "undefined") { return; }
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var block = document.getElementById("chart-" + el.dataset.chart);
      if (!block) { return; }
      // Canvas draws the five dashboard charts faster than SVG (bench/report.md); the chart's
      // data is in the table beside it and in the aria description ECharts writes, in the
      // page's language.
      var chart = window.echarts.init(el, null, { renderer: "canvas", locale: locale });
      chart.setOption(options(JSON.parse(block.textContent)));
      el.dataset.rendered = "true";
      window.addEventListener("resize", function () { chart.resize(); });
    });
    document.body.dataset.charts = "rendered";
  }

  function failed(region, body) {
    // The console or its answer did not come: say so in the page's language and keep the
    // link to the panel's own page.
    var message = document.createElement("p");
    message.className = "muted";
    message.dataset.state = "error";
    message.textContent = region.dataset.fragmentError + " ";
    var link = body.querySelector("[data-fragment-link]");
    if (link) { message.appendChild(link); }
    body.replaceChildren(message);
  }

  function load(region) {
    var body = region.querySelector("[data-fragment-body]");
    if (!body) { return; }
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, Number(region.dataset.fragmentTimeoutMs) || 15000);
    function done(state) {
      clearTimeout(timer);
      region.setAttribute("aria-busy", "false");
      region.dataset.loaded = state;
    }
    region.setAttribute("aria-busy", "true");
    fetch(region.dataset.fragment, {
      credentials: "same-origin",
      redirect: "error", // a signed-out session is sent to /login: not a panel
      headers: { "Accept": "text/html" },
      signal: controller.signal
    }).then(function (response) {
      var type = response.headers.get("content-type") || "";
      if (type.indexOf("text/html") !== 0) { throw new Error("not a panel: " + type); }
      return response.text().then(function (html) {
        // The console's own template, escaped by Jinja: it holds no script (CSP runs none).
        body.innerHTML = html;
        done(response.ok ? "ok" : "error");
      });
    }).catch(function () {
      failed(region, body);
      done("error");
    });
  }

  function start() {
    draw();
    var regions = document.querySelectorAll("[data-fragment]");
    if (!regions.length) { return; }
    // After the frame with the charts is painted: the slow panel must not hold them back. A
    // hidden tab paints no frame: it loads them now.
    if (document.hidden) { regions.forEach(load); return; }
    requestAnimationFrame(function () {
      setTimeout(function () { regions.forEach(load); }, 0);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
