// One metric of several runs on one chart.
import { api } from "./api.js";
import { Chart } from "./chart.js";
import { el, every, showError, statusBadge } from "./dom.js";

export function comparePage(view) {
  const url = new URL(window.location.href);
  const runIds = url.searchParams.getAll("run").filter(Boolean);
  let key = url.searchParams.get("key") || "";
  const keySelect = el("select", { id: "compare-metric" });
  const legend = el("div", { class: "compare-runs", id: "compare-runs" });
  const holder = el("div", { class: "compare-chart" });
  let chart = null;
  let runs = [];

  const draw = () => {
    if (chart) chart.destroy();
    chart = new Chart(holder, {
      title: key,
      height: 420,
      fetchSeries: async (start, end, maxPoints) => {
        const body = await api.compare(runIds, key, start, end, maxPoints);
        return body.series.map((s) => ({ label: s.run_id, ...s }));
      },
    });
    return chart.load().catch((error) => chart.fail(error));
  };

  const loadRuns = async () => {
    // A run whose state is unknown (its events gone, only its Parquet left) is still charted.
    const found = await Promise.allSettled(runIds.map((id) => api.run(id)));
    runs = found.map((result, i) =>
      result.status === "fulfilled" ? result.value : { run_id: runIds[i], status: null, end_time_us: 0, metrics: {} },
    );
    legend.replaceChildren(
      ...runs.map((run) =>
        el("span", { class: "compare-run" }, el("a", { href: `/runs/${encodeURIComponent(run.run_id)}`, text: run.run_id }), " ", statusBadge(run.status)),
      ),
    );
    const keys = new Set();
    runs.forEach((run) => Object.keys(run.metrics).forEach((k) => keys.add(k)));
    if (!key && keys.size) key = keys.has("train/loss") ? "train/loss" : [...keys].sort()[0];
    keySelect.replaceChildren(...[...keys].sort().map((k) => el("option", { value: k, text: k })));
    keySelect.value = key;
  };

  keySelect.addEventListener("change", () => {
    key = keySelect.value;
    const next = new URL(window.location.href);
    next.searchParams.set("key", key);
    window.history.replaceState(null, "", next);
    draw();
  });
  view.replaceChildren(el("h1", { text: "Compare" }), el("div", { class: "toolbar" }, "metric ", keySelect, legend), holder);
  if (runIds.length === 0) {
    holder.replaceChildren(el("p", { class: "muted", text: "Select runs on the runs page to compare them." }));
    return () => {};
  }
  let stop = () => {};
  loadRuns()
    .then(draw)
    .then(() => {
      stop = every(2000, async () => {
        if (!runs.some((run) => run.end_time_us === null)) return;
        await loadRuns();
        await chart.refresh();
      });
    })
    .catch(showError);
  return () => stop();
}
