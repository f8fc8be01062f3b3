// Builds both packages into their dist/:
// - @tidings/client: the event bindings copied from ui/src/bindings
//   (scripts/bindings.mjs), ESM bundles of `.` and `./react` with a shared
//   chunk (React stays external, a peer dependency), declarations by tsc;
// - @tidings/publisher: tsc, plus the append script copied byte for byte
//   from crates/tidings/src/history/append.lua, the file the Rust
//   publishers `include_str!`.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { syncBindings } from './bindings.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const APPEND_LUA = join(ROOT, '..', '..', 'crates', 'tidings', 'src', 'history', 'append.lua');
const tsc = (project) => execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], { stdio: 'inherit', cwd: ROOT });

syncBindings();
const client = join(ROOT, 'packages', 'client');
rmSync(join(client, 'dist'), { recursive: true, force: true });
await build({
  entryPoints: { index: join(client, 'src', 'index.ts'), react: join(client, 'src', 'react.ts') },
  outdir: join(client, 'dist'),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  external: ['react'],
  minifySyntax: true,
  chunkNames: 'shared',
  logLevel: 'warning',
});
tsc('packages/client');

const publisher = join(ROOT, 'packages', 'publisher');
rmSync(join(publisher, 'dist'), { recursive: true, force: true });
tsc('packages/publisher');
mkdirSync(join(publisher, 'dist'), { recursive: true });
copyFileSync(APPEND_LUA, join(publisher, 'dist', 'append.lua'));
console.log('built @tidings/client and @tidings/publisher');
