#!/usr/bin/env node
// Bundle-size budget: the gzipped size of everything the app loads from
// ui/dist (JS, CSS, HTML, fonts, images) must stay within BUDGET. Run after
// `npm run build`; exits 1 over budget or when dist/ is missing, so CI fails.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const BUDGET = 150 * 1024;
const dist = fileURLToPath(new URL('../dist', import.meta.url));

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

let all;
try {
  all = files(dist);
} catch {
  console.error(`size: ${dist} not found; run \`npm run build\` first.`);
  process.exit(1);
}

let total = 0;
const rows = all
  .map((path) => {
    const bytes = readFileSync(path);
    const gz = gzipSync(bytes, { level: 9 }).length;
    total += gz;
    return { file: relative(dist, path), raw: bytes.length, gz };
  })
  .sort((a, b) => b.gz - a.gz);

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
for (const r of rows) console.log(`${kb(r.gz).padStart(10)} gz  ${kb(r.raw).padStart(10)} raw  ${r.file}`);
console.log(`${kb(total).padStart(10)} gz total (budget ${kb(BUDGET)})`);
if (total > BUDGET) {
  console.error(`size: the bundle is ${kb(total - BUDGET)} over the ${kb(BUDGET)} gzipped budget.`);
  process.exit(1);
}
