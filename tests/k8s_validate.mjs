// k8s_validate.mjs - validates Kubernetes manifests offline against the Kubernetes API schema,
// as packaged by the npm package kubernetes-models (its types and JSON schemas are generated from
// Kubernetes' OpenAPI definitions): every object is checked twice, by the package's own JSON
// schema validator (required fields, types, formats) and by the TypeScript compiler against the
// package's interface for its kind, where an object literal with a field the interface lacks is
// an error (excess property check): unknown fields fail, at any depth.
//   node tests/k8s_validate.mjs FILE.yaml...     exit 0: all valid; 1: what is wrong, per file
// The packages come from scripts/setup.sh dev (.tools/node); TB_NODE_MODULES overrides.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = process.env.TB_NODE_MODULES ?? resolve(here, "../.tools/node/node_modules");
const { parseAllDocuments } = await import(pathToFileURL(join(modules, "yaml/dist/index.js")));

// "batch/v1" -> "batch/v1", "v1" -> "v1": the package's folders follow the API groups.
function modelPath(apiVersion, kind) {
  return `kubernetes-models/${apiVersion}/${kind}`;
}

const files = process.argv.slice(2);
if (!files.length) {
  console.error("usage: node k8s_validate.mjs FILE.yaml...");
  process.exit(2);
}
const objects = [];
let failed = 0;
for (const file of files) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (doc.errors.length) {
      console.error(`${file}: not YAML: ${doc.errors[0].message}`);
      failed++;
      continue;
    }
    const obj = doc.toJS();
    if (!obj) continue;
    objects.push({ file, obj });
  }
}

// 1. The package's JSON schema, as its models validate themselves.
for (const { file, obj } of objects) {
  const where = `${file}: ${obj.kind} ${obj.metadata?.name ?? "?"}`;
  let Model;
  try {
    const mod = await import(pathToFileURL(join(modules, `${modelPath(obj.apiVersion, obj.kind)}.js`)));
    Model = mod[obj.kind];
  } catch (e) {
    console.error(`${where}: unknown apiVersion/kind ${obj.apiVersion} ${obj.kind}`);
    failed++;
    continue;
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    console.error(`${where}: ${e.message}`);
    failed++;
  }
}

// 2. The package's interfaces: unknown fields are excess properties.
const work = mkdtempSync(join(modules, "..", ".k8s-validate-"));
try {
  let ts = "";
  objects.forEach(({ obj }, i) => {
    ts += `import type { I${obj.kind} as T${i} } from "${modelPath(obj.apiVersion, obj.kind)}";\n`;
  });
  objects.forEach(({ obj }, i) => {
    ts += `export const m${i}: T${i} = ${JSON.stringify(obj, null, 1)};\n`;
  });
  writeFileSync(join(work, "manifests.ts"), ts);
  try {
    execFileSync(
      process.execPath,
      [join(modules, "typescript/bin/tsc"), "--noEmit", "--strict", "--skipLibCheck",
       "--target", "es2022", "--module", "esnext", "--moduleResolution", "bundler",
       "--pretty", "false", join(work, "manifests.ts")],
      { stdio: ["ignore", "pipe", "pipe"], cwd: work },
    );
  } catch (e) {
    const text = `${e.stdout ?? ""}${e.stderr ?? ""}`;
    // Each error names the line of manifests.ts; say which manifest that is.
    for (const line of text.split("\n").filter(Boolean)) {
      const at = /manifests\.ts\((\d+),/.exec(line);
      let which = "";
      if (at) {
        const upto = ts.split("\n").slice(0, Number(at[1])).join("\n");
        const m = [...upto.matchAll(/export const m(\d+)/g)].pop();
        if (m) {
          const { file, obj } = objects[Number(m[1])];
          which = `${file}: ${obj.kind} ${obj.metadata?.name ?? "?"}: `;
        }
      }
      console.error(`${which}${line.replace(/^.*manifests\.ts\(\d+,\d+\): /, "")}`);
    }
    failed++;
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

if (failed) process.exit(1);
console.log(`${objects.length} objects valid against the Kubernetes API schema (kubernetes-models)`);
