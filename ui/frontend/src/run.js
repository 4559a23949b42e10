// One run: attributes, params, tags and labels, logs by level, and a chart per metric that
// grows while the run is running.
import { api } from "./api.js";
import { Chart } from "./chart.js";
import { el, every, formatDuration, formatTime, formatValue, showError, statusBadge } from "./dom.js";

const LEVELS = ["debug", "info", "warn", "warning", "error", "critical", "fatal"]; // the contract's LOG_LEVELS (a unit test compares)

function pairsTable(id, pairs) {
  const entries = Object.entries(pairs);
  if (!entries.length) return el("p", { class: "muted", id, text: "none" });
  return el(
    "table",
    { class: "pairs", id },
    el("tbody", {}, ...entries.map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { text: String(v) })))),
  );
}

export function runPage(view, runId) {
  const charts = new Map();
  const head = el("div", { class: "run-head" });
  const summary = el("div", { class: "run-summary" });
  const chartGrid = el("div", { class: "charts", id: "charts" });
  const chartFilter = el("input", { id: "chart-filter", type: "search", placeholder: "filter metrics" });
  const levelSelect = el(
    "select",
    { id: "log-level" },
    el("option", { value: "", text: "all levels" }),
    ...LEVELS.map((level) => el("option", { value: level, text: level })),
  );
  const logList = el("div", { class: "logs", id: "logs" });
  let run = null;

  const renderSummary = () => {
    head.replaceChildren(
      el("h1", {}, run.name || run.run_id, " ", statusBadge(run.status)),
      el(
        "p",
        { class: "muted" },
        `${run.run_id} · ${run.collection || "no collection"} · started ${formatTime(run.start_time_us)} · ` +
          `${formatDuration(run.start_time_us, run.end_time_us)}${run.end_time_us ? "" : " so far"}`,
      ),
    );
    const metrics = Object.fromEntries(
      Object.entries(run.metrics).map(([k, m]) => [k, `${formatValue(m.value)} (step ${m.step}, min ${formatValue(m.min)}, max ${formatValue(m.max)})`]),
    );
    summary.replaceChildren(
      el("section", {}, el("h2", { text: "Params" }), pairsTable("params", run.params)),
      el("section", {}, el("h2", { text: "Tags" }), pairsTable("tags", run.tags)),
      el("section", {}, el("h2", { text: "Labels" }), pairsTable("labels", run.labels)),
      el("section", {}, el("h2", { text: "Latest metrics" }), pairsTable("latest", metrics)),
    );
  };

  const applyChartFilter = () => {
    const needle = chartFilter.value.trim().toLowerCase();
    for (const [key, chart] of charts) chart.root.hidden = needle !== "" && !key.toLowerCase().includes(needle);
  };

  const syncCharts = async () => {
    const loads = [];
    for (const key of Object.keys(run.metrics).sort()) {
      if (charts.has(key)) {
        loads.push(charts.get(key).refresh());
        continue;
      }
      const chart = new Chart(chartGrid, {
        title: key,
        fetchSeries: async (start, end, maxPoints) => {
          const body = await api.history(runId, key, start, end, maxPoints);
          return [{ label: key, ...body }];
        },
      });
      charts.set(key, chart);
      loads.push(chart.load().catch((error) => chart.fail(error)));
    }
    applyChartFilter();
    await Promise.all(loads);
  };

  const loadLogs = async () => {
    const body = await api.logs(runId, levelSelect.value ? [levelSelect.value] : [], 500);
    logList.replaceChildren(
      ...(body.lines.length
        ? body.lines.map((line) =>
            el(
              "div",
              { class: `log log-${line.level}`, "data-level": line.level },
              el("span", { class: "log-time", text: formatTime(line.time_us) }),
              el("span", { class: "log-level", text: line.level }),
              line.rank === null ? null : el("span", { class: "log-rank", text: `rank ${line.rank}` }),
              el("span", { class: "log-message", text: line.message }),
              Object.keys(line.metadata).length
                ? el("span", { class: "log-meta", text: JSON.stringify(line.metadata) })
                : null,
            ),
          )
        : [el("p", { class: "muted", text: "no log lines" })]),
    );
  };

  const load = async () => {
    run = await api.run(runId);
    renderSummary();
    await Promise.all([syncCharts(), loadLogs()]);
    view.dataset.status = run.status || "";
  };

  chartFilter.addEventListener("input", applyChartFilter);
  levelSelect.addEventListener("change", () => loadLogs().catch(showError));
  view.replaceChildren(
    head,
    summary,
    el("div", { class: "section-head" }, el("h2", { text: "Metrics" }), chartFilter),
    chartGrid,
    el("div", { class: "section-head" }, el("h2", { text: "Logs" }), levelSelect),
    logList,
  );
  let stop = () => {};
  load()
    .then(() => {
      // Live: a run that has not ended is polled; its charts and status update in place.
      stop = every(2000, async () => {
        if (run && run.end_time_us !== null && run.status && run.status !== "RUNNING") return;
        await load();
      });
    })
    .catch(showError);
  return () => {
    stop();
    for (const chart of charts.values()) chart.destroy();
  };
}
