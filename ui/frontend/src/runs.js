// The runs table: filter (the query layer's filter language), server-side sort, chosen
// param/metric columns, live status, and a selection to compare.
import { api } from "./api.js";
import { el, every, formatDuration, formatTime, formatValue, showError, statusBadge } from "./dom.js";

const ATTRIBUTES = [
  ["run_id", "run"],
  ["name", "name"],
  ["collection", "collection"],
  ["status", "status"],
  ["start_time", "started"],
];

function quoted(name) {
  return "`" + name + "`";
}

export function runsPage(view) {
  const url = new URL(window.location.href);
  const state = {
    filter: url.searchParams.get("filter") || "",
    order: url.searchParams.get("order") || "",
    cols: url.searchParams.has("cols") ? url.searchParams.getAll("cols").filter(Boolean) : null,
    selected: new Set(),
    runs: [],
  };
  const filterInput = el("input", {
    id: "filter",
    type: "search",
    placeholder: "params.optimizer.lr > 0.001 AND status = 'FINISHED'",
    value: state.filter,
  });
  const filterError = el("pre", { id: "filter-error", class: "filter-error", hidden: true });
  const count = el("span", { id: "run-count", class: "muted" });
  const columnsBox = el("div", { class: "columns" });
  const metricSelect = el("select", { id: "compare-key" });
  const compareButton = el("button", { id: "compare", type: "button", disabled: true, text: "Compare" });
  const table = el("table", { id: "runs", class: "runs" });

  const syncUrl = () => {
    const next = new URL(window.location.href);
    next.search = "";
    if (state.filter) next.searchParams.set("filter", state.filter);
    if (state.order) next.searchParams.set("order", state.order);
    if (state.cols) for (const c of state.cols.length ? state.cols : [""]) next.searchParams.append("cols", c);
    window.history.replaceState(null, "", next);
  };

  const allKeys = () => {
    const params = new Set();
    const metrics = new Set();
    for (const run of state.runs) {
      Object.keys(run.params).forEach((k) => params.add(k));
      Object.keys(run.metrics).forEach((k) => metrics.add(k));
    }
    return { params: [...params].sort(), metrics: [...metrics].sort() };
  };

  const columns = () => {
    if (state.cols) return state.cols;
    const { params, metrics } = allKeys();
    return [
      ...params.slice(0, 3).map((k) => `params.${k}`),
      ...metrics.filter((k) => !/^worker\d/.test(k)).slice(0, 3).map((k) => `metrics.${k}`),
    ];
  };

  const sortBy = (field) => {
    const [current, direction] = state.order.split(" ");
    state.order = `${field} ${current === field && direction === "DESC" ? "ASC" : "DESC"}`;
    syncUrl();
    load();
  };

  const orderField = (column) => {
    const dot = column.indexOf(".");
    return `${column.slice(0, dot)}.${quoted(column.slice(dot + 1))}`;
  };

  const header = (label, field) => {
    const [current, direction] = state.order.split(" ");
    const arrow = current === field ? (direction === "DESC" ? " ▼" : " ▲") : "";
    return el("th", { class: "sortable", "data-field": field, onclick: () => sortBy(field) }, label + arrow);
  };

  const renderColumns = () => {
    const { params, metrics } = allKeys();
    const chosen = new Set(columns());
    const box = (name) =>
      el(
        "label",
        { class: "column-choice" },
        el("input", {
          type: "checkbox",
          "data-column": name,
          checked: chosen.has(name),
          onchange: (event) => {
            const next = new Set(columns());
            if (event.target.checked) next.add(name);
            else next.delete(name);
            state.cols = [...next];
            syncUrl();
            render();
          },
        }),
        name,
      );
    columnsBox.replaceChildren(
      el("details", {}, el("summary", { text: "Columns" }), ...params.map((k) => box(`params.${k}`)), ...metrics.map((k) => box(`metrics.${k}`))),
    );
  };

  const renderCompare = () => {
    const chosen = state.runs.filter((run) => state.selected.has(run.run_id));
    const keys = new Set();
    chosen.forEach((run) => Object.keys(run.metrics).forEach((k) => keys.add(k)));
    const previous = metricSelect.value;
    metricSelect.replaceChildren(...[...keys].sort().map((k) => el("option", { value: k, text: k })));
    if (keys.has(previous)) metricSelect.value = previous;
    else if (keys.has("train/loss")) metricSelect.value = "train/loss";
    compareButton.disabled = chosen.length < 2 || keys.size === 0;
  };

  const render = () => {
    const cols = columns();
    const head = el(
      "tr",
      {},
      el("th", {}, ""),
      ...ATTRIBUTES.map(([field, label]) => header(label, field)),
      el("th", { text: "duration" }),
      ...cols.map((c) => header(c.replace(/^(params|metrics)\./, ""), orderField(c))),
    );
    const rows = state.runs.map((run) =>
      el(
        "tr",
        { "data-run": run.run_id },
        el(
          "td",
          {},
          el("input", {
            type: "checkbox",
            class: "select-run",
            "data-run": run.run_id,
            checked: state.selected.has(run.run_id),
            onchange: (event) => {
              if (event.target.checked) state.selected.add(run.run_id);
              else state.selected.delete(run.run_id);
              renderCompare();
            },
          }),
        ),
        el("td", {}, el("a", { href: `/runs/${encodeURIComponent(run.run_id)}`, class: "run-link", text: run.run_id })),
        el("td", { text: run.name || "" }),
        el("td", { text: run.collection || "" }),
        el("td", { class: "status-cell" }, statusBadge(run.status)),
        el("td", { text: formatTime(run.start_time_us) }),
        el("td", { text: formatDuration(run.start_time_us, run.end_time_us) }),
        ...cols.map((c) => {
          const dot = c.indexOf(".");
          const kind = c.slice(0, dot);
          const key = c.slice(dot + 1);
          const value = kind === "params" ? run.params[key] : run.metrics[key] ? run.metrics[key].value : undefined;
          return el("td", { class: kind === "metrics" ? "num" : "", "data-column": c, text: formatValue(value) });
        }),
      ),
    );
    table.replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
    count.textContent = `${state.runs.length} run${state.runs.length === 1 ? "" : "s"}`;
    renderColumns();
    renderCompare();
  };

  const load = async () => {
    try {
      const body = await api.runs(state.filter, state.order ? [state.order] : [], 1000);
      state.runs = body.runs;
      filterError.hidden = true;
      showError(null);
      render();
      table.dataset.state = "ready";
    } catch (error) {
      if (error.field === "filter" || error.field === "order_by") {
        filterError.hidden = false;
        filterError.textContent = error.message;
        table.dataset.state = "error";
      } else {
        throw error;
      }
    }
  };

  const apply = (event) => {
    event.preventDefault();
    state.filter = filterInput.value.trim();
    syncUrl();
    load().catch(showError);
  };

  compareButton.addEventListener("click", () => {
    const target = new URL("/compare", window.location.origin);
    for (const run of state.runs) if (state.selected.has(run.run_id)) target.searchParams.append("run", run.run_id);
    target.searchParams.set("key", metricSelect.value);
    window.location.href = target.toString();
  });

  view.replaceChildren(
    el("h1", { text: "Runs" }),
    el(
      "form",
      { class: "filter", onsubmit: apply },
      filterInput,
      el("button", { type: "submit", text: "Filter" }),
      count,
    ),
    filterError,
    el("div", { class: "toolbar" }, columnsBox, el("span", { class: "spacer" }), "metric ", metricSelect, compareButton),
    el("div", { class: "table-scroll" }, table),
  );
  load().catch(showError);
  return every(3000, load); // live status
}
