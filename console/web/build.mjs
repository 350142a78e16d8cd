// Builds the console's bundle into ../dist from src/ and the pinned packages of
// package-lock.json: dist is embedded in sheetd (go:embed) and committed, and
// `make console-check` rebuilds it to prove it matches these sources.
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";

const out = new URL("../dist/", import.meta.url).pathname;
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: ["src/main.js"],
  bundle: true,
  format: "esm",
  minify: true,
  target: ["chrome120", "firefox121", "safari17"],
  outfile: out + "app.js",
  legalComments: "eof",
  logLevel: "warning",
});
copyFileSync("node_modules/pdfjs-dist/build/pdf.worker.min.mjs", out + "pdf.worker.mjs");
for (const f of ["index.html", "style.css"]) copyFileSync("src/" + f, out + f);
