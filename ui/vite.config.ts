// Vite build of the dashboard. No inline scripts or styles may come out of it:
// index.html carries a strict CSP (script-src/style-src 'self').
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Relative asset URLs: the same dist works under Tauri's custom protocol
  // and from the static server the browser tests use.
  base: './',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    target: 'es2022',
    // Everything as files: data: URLs would need a looser CSP.
    assetsInlineLimit: 0,
    // The polyfill would be fine under CSP, but WebKitGTK and Chromium both
    // support modulepreload; leave it out to keep the entry small.
    modulePreload: { polyfill: false },
    reportCompressedSize: true,
  },
  // Tauri's devUrl (src-tauri/tauri.conf.json) points here.
  server: { strictPort: true, port: 5173 },
  test: {
    include: ['test/unit/**/*.test.ts', 'test/unit/**/*.test.tsx'],
    environment: 'node',
  },
});
