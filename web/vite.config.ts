import { defineConfig } from "vitest/config";

// The dashboard is built into dist/app, which web/embed.go embeds into the Go binary.
// During `npm run dev`, API and WebSocket calls go to a tickstream server (TICKSTREAM_URL,
// default http://127.0.0.1:8080).
const backend = process.env.TICKSTREAM_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  base: "/",
  build: {
    outDir: "dist/app",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    assetsDir: "assets",
  },
  server: {
    proxy: {
      "/api": backend,
      "/readyz": backend,
      "/ws": { target: backend.replace(/^http/, "ws"), ws: true },
    },
  },
  test: {
    include: ["test/unit/**/*.test.ts"],
    environment: "node",
  },
});
