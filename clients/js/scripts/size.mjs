// The client's weight in an app: `@tidings/client` (without React) and
// `@tidings/client/react` (React itself not counted), each bundled and
// minified as an app's bundler would, gzipped. Fails over the budget.
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BUDGET = { '@tidings/client': 6 * 1024, '@tidings/client/react': 7 * 1024 };
let failed = false;
for (const [name, budget] of Object.entries(BUDGET)) {
  const result = await build({
    stdin: { contents: `export * from '${name}';`, resolveDir: ROOT, loader: 'js' },
    bundle: true,
    minify: true,
    format: 'esm',
    external: ['react'],
    write: false,
  });
  const bytes = result.outputFiles[0].contents;
  const gzipped = gzipSync(bytes, { level: 9 }).length;
  const ok = gzipped <= budget;
  failed ||= !ok;
  console.log(`${name}: ${bytes.length} B minified, ${gzipped} B gzipped (budget ${budget} B) ${ok ? 'ok' : 'OVER BUDGET'}`);
}
if (failed) process.exit(1);
