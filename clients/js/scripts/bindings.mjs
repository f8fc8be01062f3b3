// The event types come from ONE source: ui/src/bindings, generated from the
// Rust contract (crates/tidings-events) by ts-rs and kept in step by the
// drift check `cargo test -p tidings-desk --test bindings`. This copies the
// files the `Event` type needs (Event.ts and what it imports, transitively)
// into packages/client/src/bindings/ (git-ignored), byte for byte, before
// type-checking or building. Nothing here is written by hand.
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const SOURCE = normalize(join(ROOT, '..', '..', 'ui', 'src', 'bindings'));
export const TARGET = join(ROOT, 'packages', 'client', 'src', 'bindings');

/** Event.ts and every binding it imports, as paths relative to the bindings root. */
export function eventBindings() {
  const seen = new Set();
  const pending = ['Event.ts'];
  while (pending.length) {
    const file = pending.pop();
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(join(SOURCE, file), 'utf8');
    for (const [, spec] of text.matchAll(/from "(\.[^"]+)"/g)) {
      pending.push(normalize(join(dirname(file), `${spec}.ts`)));
    }
  }
  return [...seen].sort();
}

export function syncBindings() {
  rmSync(TARGET, { recursive: true, force: true });
  const files = eventBindings();
  for (const file of files) {
    mkdirSync(dirname(join(TARGET, file)), { recursive: true });
    copyFileSync(join(SOURCE, file), join(TARGET, file));
  }
  return files;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const files = syncBindings();
  console.log(`bindings: ${files.length} files from ui/src/bindings`);
}
