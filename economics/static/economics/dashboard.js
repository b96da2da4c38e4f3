/*
 * Economics dashboards: draws every <canvas data-economics-chart="ID"> from the JSON in the
 * <script id="ID"> beside it, with the Chart.js the admin theme bundles (never a CDN).
 * Numbers arrive as exact decimal strings; Chart.js reads them as numbers only to draw.
 */
(function () {
  "use strict";

  const cssColor = (value) => {
    if (typeof value !== "string" || !value.startsWith("var(")) return value;
    const resolved = getComputedStyle(document.documentElement)
      .getPropertyValue(value.slice(4, -1))
      .trim();
    return resolved || "#6b7280";
  };

  const usd = (value, places) =>
    "$" +
    Number(value).toLocaleString("en-US", {
      minimumFractionDigits: places,
      maximumFractionDigits: places,
    });

  // Dashed vertical lines (median, P95, tail threshold) at data.markers[].at on the x scale.
  const markerPlugin = {
    id: "economicsMarkers",
    afterDatasetsDraw(chart) {
      const markers = chart.data.markers || [];
      const { ctx, chartArea, scales } = chart;
      markers.forEach((marker, index) => {
        const x = scales.x.getPixelForValue(Number(marker.at));
        const right = x > (chartArea.left + chartArea.right) / 2;
        ctx.save();
        ctx.strokeStyle = marker.color;
        ctx.fillStyle = marker.color;
        ctx.lineWidth = 2;
        ctx.setLineDash([5, 4]);
        ctx.beginPath();
        ctx.moveTo(x, chartArea.top);
        ctx.lineTo(x, chartArea.bottom);
        ctx.stroke();
        // The label on a light plate, so it stays readable over the bars.
        const text = `${marker.label} ${usd(marker.value, 2)}`;
        ctx.font = "600 11px Inter, sans-serif";
        const width = ctx.measureText(text).width;
        const left = right ? x - 6 - width : x + 6;
        const top = chartArea.top + 2 + index * 16;
        ctx.setLineDash([]);
        ctx.fillStyle = "rgba(255, 255, 255, 0.9)";
        ctx.fillRect(left - 3, top, width + 6, 14);
        ctx.fillStyle = marker.color;
        ctx.textBaseline = "top";
        ctx.fillText(text, left, top + 2);
        ctx.restore();
      });
    },
  };

  const options = (payload) => {
    const counts = payload.format === "count";
    const horizontal = (payload.options || {}).indexAxis === "y";
    const valueAxis = {
      beginAtZero: true,
      ticks: {
        color: "#9ca3af",
        precision: counts ? 0 : undefined,
        callback: (value) => (counts ? value : usd(value, 0)),
      },
      grid: { color: cssColor("var(--color-base-200)") },
    };
    const categoryAxis = { ticks: { color: "#9ca3af", autoSkip: true }, grid: { display: false } };
    return {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      plugins: {
        legend: {
          display: payload.data.datasets.length > 1,
          align: "end",
          labels: { boxWidth: 8, boxHeight: 8, usePointStyle: true, color: "#6b7280" },
        },
        tooltip: {
          callbacks: {
            label: (item) =>
              `${item.dataset.label}: ${counts ? item.raw : usd(item.raw, 2)}`,
          },
        },
      },
      scales: horizontal ? { x: valueAxis, y: categoryAxis } : { x: categoryAxis, y: valueAxis },
      ...(payload.options || {}),
    };
  };

  const draw = () => {
    if (!window.Chart) return;
    document.querySelectorAll("canvas[data-economics-chart]").forEach((canvas) => {
      const source = document.getElementById(canvas.dataset.economicsChart);
      if (!source || Chart.getChart(canvas)) return;
      const payload = JSON.parse(source.textContent);
      payload.data.datasets.forEach((dataset) => {
        dataset.backgroundColor = cssColor(dataset.backgroundColor);
        dataset.borderColor = cssColor(dataset.borderColor);
        if (payload.type === "bar") dataset.borderRadius = 4;
        if (payload.type === "line") {
          dataset.pointRadius = 0;
          dataset.borderWidth = 2;
        }
      });
      new Chart(canvas, {
        type: payload.type,
        data: payload.data,
        options: options(payload),
        plugins: [markerPlugin],
      });
    });
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
