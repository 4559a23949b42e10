// Routes a path to its page: /, /runs/<id>, /compare.
import { api } from "./api.js";
import { comparePage } from "./compare.js";
import { showError } from "./dom.js";
import { runPage } from "./run.js";
import { runsPage } from "./runs.js";

function route() {
  const view = document.getElementById("view");
  const path = window.location.pathname;
  if (path.startsWith("/runs/")) {
    const runId = decodeURIComponent(path.slice("/runs/".length));
    document.title = `${runId} · Runstream`;
    return runPage(view, runId);
  }
  if (path === "/compare") {
    document.title = "Compare · Runstream";
    return comparePage(view);
  }
  document.title = "Runs · Runstream";
  return runsPage(view);
}

api
  .info()
  .then((info) => {
    document.getElementById("source").textContent = [info.tracking_uri, info.store].filter(Boolean).join(" · ");
  })
  .catch(showError);
route();
