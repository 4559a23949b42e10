// One uPlot chart of one metric (one or several runs). Each series draws its buckets' last
// value as a line and their min..max as a band, so a spike inside a bucket stays visible.
// Drag to zoom: the chart asks the server for a finer downsample of the selected step range;
// double-click goes back to the whole range.
import uPlot from "uplot";
import { el, formatValue } from "./dom.js";

export const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];

// Series -> uPlot data: one x array (the union of steps) and one y array per series, plus
// min/max arrays aligned the same way for the bands.
export function align(series) {
  if (series.length === 1) {
    const s = series[0];
    return { xs: s.step, ys: [s.value], mins: [s.min], maxs: [s.max] };
  }
  const steps = new Set();
  for (const s of series) for (const step of s.step) steps.add(step);
  const xs = Float64Array.from(steps).sort();
  const index = new Map();
  xs.forEach((x, i) => index.set(x, i));
  const fill = (s, column) => {
    const out = new Array(xs.length).fill(null);
    s.step.forEach((step, i) => {
      out[index.get(step)] = s[column][i];
    });
    return out;
  };
  return {
    xs: Array.from(xs),
    ys: series.map((s) => fill(s, "value")),
    mins: series.map((s) => fill(s, "min")),
    maxs: series.map((s) => fill(s, "max")),
  };
}

function drawBands(u, mins, maxs) {
  const ctx = u.ctx;
  ctx.save();
  ctx.beginPath();
  ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
  ctx.clip();
  const xs = u.data[0];
  mins.forEach((lo, k) => {
    const hi = maxs[k];
    if (!u.series[k + 1].show) return;
    ctx.fillStyle = COLORS[k % COLORS.length] + "33";
    let start = 0;
    while (start < xs.length) {
      while (start < xs.length && (lo[start] === null || hi[start] === null)) start++;
      let end = start;
      while (end < xs.length && lo[end] !== null && hi[end] !== null) end++;
      if (end > start) {
        ctx.beginPath();
        for (let i = start; i < end; i++) {
          const x = u.valToPos(xs[i], "x", true);
          const y = u.valToPos(hi[i], "y", true);
          if (i === start) ctx.moveTo(x, y);
          else ctx.lineTo(x, y);
        }
        for (let i = end - 1; i >= start; i--) {
          ctx.lineTo(u.valToPos(xs[i], "x", true), u.valToPos(lo[i], "y", true));
        }
        ctx.closePath();
        ctx.fill();
        ctx.strokeStyle = COLORS[k % COLORS.length] + "88";
        ctx.lineWidth = 1;
        ctx.stroke(); // a one-bucket spike is a thin polygon: its outline keeps it visible
      }
      start = end;
    }
  });
  ctx.restore();
}

export class Chart {
  // fetchSeries(start, end, maxPoints) resolves to [{label, step, value, min, max, points}].
  constructor(container, { title, fetchSeries, height = 240 }) {
    this.title = title;
    this.fetchSeries = fetchSeries;
    this.height = height;
    this.range = null;
    this.plot = null;
    this.bands = { mins: [], maxs: [] };
    this.sequence = 0;
    this.pending = null;
    this.caption = el("span", { class: "chart-caption" });
    this.body = el("div", { class: "chart-body" });
    this.root = el(
      "div",
      { class: "chart", "data-title": title, "data-state": "loading" },
      el("div", { class: "chart-head" }, el("span", { class: "chart-title", text: title }), this.caption),
      this.body,
    );
    container.append(this.root);
    this.onResize = () => this.plot && this.plot.setSize({ width: this.width(), height: this.height });
    window.addEventListener("resize", this.onResize);
  }

  width() {
    return Math.max(240, Math.floor(this.body.getBoundingClientRect().width || 600));
  }

  // Fetches the current range (all steps, or the zoomed range) and draws it.
  async load() {
    const sequence = ++this.sequence;
    const started = performance.now();
    const range = this.range;
    const maxPoints = Math.min(20000, this.width());
    const series = await this.fetchSeries(range ? range[0] : null, range ? range[1] : null, maxPoints);
    if (sequence !== this.sequence) return; // a newer request superseded this one
    const { xs, ys, mins, maxs } = align(series);
    this.bands = { mins, maxs };
    this.pending = started;
    const data = [xs, ...ys];
    if (this.plot === null) {
      this.plot = new uPlot(this.options(series), data, this.body);
    } else if (range) {
      this.plot.setData(data, false);
      this.plot.setScale("x", { min: range[0], max: range[1] });
    } else {
      this.plot.setData(data, true);
    }
    const points = series.map((s) => s.points);
    this.root.dataset.points = points.join(",");
    this.root.dataset.maxPoints = String(maxPoints);
    this.root.dataset.range = range ? `${range[0]}-${range[1]}` : "all";
    const merged = series.reduce((n, s) => n + s.buckets_merged, 0);
    this.caption.textContent =
      `${points.join(" / ")} point${points.length === 1 && points[0] === 1 ? "" : "s"}` +
      (merged ? " (min/max/last buckets)" : "") +
      (range ? ` · steps ${range[0]}–${range[1]} · double-click: all` : "");
  }

  options(series) {
    return {
      width: this.width(),
      height: this.height,
      scales: {
        x: { time: false },
        // the y range covers the bands (bucket min/max), not only the lines: a spike shows
        y: {
          range: (u, dataMin, dataMax) => {
            let lo = dataMin;
            let hi = dataMax;
            for (const column of this.bands.mins) for (const v of column) if (v !== null && !(v >= lo)) lo = v;
            for (const column of this.bands.maxs) for (const v of column) if (v !== null && !(v <= hi)) hi = v;
            return uPlot.rangeNum(lo ?? 0, hi ?? 1, 0.1, true);
          },
        },
      },
      legend: { live: true },
      cursor: {
        drag: { x: true, y: false, setScale: false },
        bind: {
          dblclick: () => () => {
            if (this.range !== null) {
              this.range = null;
              this.load().catch((error) => this.fail(error));
            }
            return null;
          },
        },
      },
      series: [
        { label: "step" },
        ...series.map((s, k) => ({
          label: s.label,
          stroke: COLORS[k % COLORS.length],
          width: 1.5,
          spanGaps: series.length > 1,
        })),
      ],
      axes: [{}, { size: 64, values: (u, splits) => splits.map((v) => formatValue(v)) }],
      hooks: {
        draw: [
          (u) => {
            drawBands(u, this.bands.mins, this.bands.maxs);
            if (this.pending !== null) {
              this.root.dataset.renderMs = (performance.now() - this.pending).toFixed(1);
              this.root.dataset.state = "ready";
              this.pending = null;
            }
          },
        ],
        setSelect: [
          (u) => {
            if (u.select.width < 2) return;
            const lo = Math.floor(u.posToVal(u.select.left, "x"));
            const hi = Math.ceil(u.posToVal(u.select.left + u.select.width, "x"));
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            if (hi > lo) this.zoom(lo, hi);
          },
        ],
      },
    };
  }

  // Shows steps lo..hi, downsampled afresh by the server.
  zoom(lo, hi) {
    this.range = [lo, hi];
    this.root.dataset.state = "loading";
    return this.load().catch((error) => this.fail(error));
  }

  // Live refresh: redraw with the latest points unless the user is looking at a zoomed range.
  refresh() {
    return this.range === null ? this.load() : Promise.resolve();
  }

  fail(error) {
    this.root.dataset.state = "error";
    this.caption.textContent = error.message || String(error);
  }

  destroy() {
    window.removeEventListener("resize", this.onResize);
    if (this.plot) this.plot.destroy();
    this.root.remove();
  }
}
