import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// In development (`npm run dev`), /api, /data and /gateway go to a running gateway (make demo prints
// its URL; set HEBI_GATEWAY to it), so the dev server behaves like the session's nginx.
const gateway = process.env.HEBI_GATEWAY ?? 'http://127.0.0.1:8000';

export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', sourcemap: true },
  server: {
    proxy: {
      '/api': gateway,
      '/data': gateway,
      '/gateway': gateway,
    },
  },
});
