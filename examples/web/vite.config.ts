import { defineConfig } from 'vite';

export default defineConfig({
  // @tidings/client is linked from clients/js: use this app's one React.
  resolve: { dedupe: ['react', 'react-dom'] },
  esbuild: { jsx: 'automatic' },
  server: { host: '127.0.0.1', port: 5173 },
});
