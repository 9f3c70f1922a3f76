// Builds the demo chat page into ../gateway/static/app/ (index.html, app.js, app.css, source
// maps), which the gateway serves at / and /static/app/. The folder is generated: it is
// removed first and never committed (.gitignore). `make install` runs this (`npm run build`).
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "gateway", "static", "app");

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await build({
  entryPoints: { app: join(here, "src", "main.tsx") },
  outdir: out,
  bundle: true,
  format: "esm",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  jsx: "automatic",
  jsxImportSource: "preact",
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  logLevel: "warning",
});
await copyFile(join(here, "index.html"), join(out, "index.html"));
console.log(`demo page built into ${out}`);
