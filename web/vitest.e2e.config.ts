import { defineConfig } from "vitest/config";

// End-to-end: a real tickstream server and headless Chromium (see test/e2e/).
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.e2e.ts"],
    environment: "node",
    testTimeout: 300_000,
    hookTimeout: 240_000,
    fileParallelism: false,
    reporters: ["verbose"],
  },
});
