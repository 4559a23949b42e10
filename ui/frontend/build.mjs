// Builds the UI into ../src/runstream/ui/static (the package's data): index.html, assets/app.js and assets/app.css (uPlot bundled,
// nothing loaded from a CDN), and build.json with the hash of the sources it was built from
// (runstream/ui/assets.py computes the same hash; a unit test compares them).
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "src", "runstream", "ui", "static");

function walk(folder) {
  return readdirSync(folder).flatMap((name) => {
    const path = join(folder, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

function sourceHash() {
  const rel = (p) => relative(here, p).split("\\").join("/");
  const fixed = ["package.json", "package-lock.json", "build.mjs"].map((n) => join(here, n));
  const sources = walk(join(here, "src")).sort((a, b) => (rel(a) < rel(b) ? -1 : rel(a) > rel(b) ? 1 : 0));
  const hash = createHash("sha256");
  for (const path of [...fixed, ...sources]) {
    hash.update(Buffer.concat([Buffer.from(rel(path) + "\0"), readFileSync(path), Buffer.from("\0")]));
  }
  return hash.digest("hex");
}

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });
await build({
  entryPoints: { app: join(here, "src", "main.js"), style: join(here, "src", "style.css") },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome100", "firefox100", "safari15"],
  outdir: join(out, "assets"),
  legalComments: "linked",
  logLevel: "warning",
});
copyFileSync(join(here, "src", "index.html"), join(out, "index.html"));
writeFileSync(join(out, "build.json"), JSON.stringify({ source_sha256: sourceHash() }, null, 2) + "\n");
console.log(`built ${relative(process.cwd(), out)}`);
