import { defineConfig } from "vitest/config";

// "Production in ten minutes" (README): every command of that section against real Apache
// Kafka, the dashboard in headless Chromium. `make test-production` starts the broker.
export default defineConfig({
  test: {
    include: ["test/production/**/*.e2e.ts"],
    environment: "node",
    testTimeout: 300_000,
    hookTimeout: 240_000,
    fileParallelism: false,
    reporters: ["verbose"],
  },
});
