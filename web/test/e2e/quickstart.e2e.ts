/**
 * The quickstart client of docs/PROTOCOL.md, run as written against a real `tickstream serve`:
 * once the feed stops, the state it printed for each symbol must equal GET /api/v1/snapshot.
 * If the doc's code or the server drift apart, this fails.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";
import { afterAll, beforeAll, expect, it } from "vitest";
import { REPO_DIR, Server, freePort, log, sleep, trackedWebSocket } from "./harness.js";

const SIM_FOR_MS = 3000;

/** The ```js block of the "## Quickstart" section. */
function quickstartCode(): string {
  const doc = readFileSync(join(REPO_DIR, "docs", "PROTOCOL.md"), "utf8");
  const section = doc.split("\n## Quickstart\n")[1];
  const code = section?.match(/```js\n([\s\S]*?)\n```/)?.[1];
  if (!code) throw new Error("docs/PROTOCOL.md has no ```js block under ## Quickstart");
  expect(code.split("\n").length).toBeLessThan(40); // the promise: under 40 lines
  return code;
}

let server: Server;
beforeAll(async () => {
  if (process.env.TICKSTREAM_MOCK === "1") return;
  server = new Server(await freePort(), ["--symbols", "10", "--rate", "300", "--sim-duration", `${SIM_FOR_MS}ms`]);
  await server.start();
});
afterAll(async () => {
  await server?.kill("SIGTERM");
});

it.skipIf(process.env.TICKSTREAM_MOCK === "1")("the PROTOCOL.md quickstart rebuilds the server's state", async () => {
  const code = quickstartCode().replace("ws://127.0.0.1:8080/ws", `ws://127.0.0.1:${server.port}/ws`);
  const last = new Map<string, { seq: number; state: Record<string, number> }>();
  const errors: unknown[][] = [];
  const console = {
    log: (sym: string, seq: number, state: string) => last.set(sym, { seq, state: JSON.parse(state) }),
    error: (...a: unknown[]) => errors.push(a),
  };
  const sockets: WebSocket[] = [];
  new Function("WebSocket", "console", code)(trackedWebSocket(sockets), console);
  try {
    await sleep(SIM_FOR_MS + 1500); // the feed stops, and its last updates arrive
    const snap = await server.get<{ snapshots: Record<string, { seq: number; state: Record<string, number> }> }>(
      "/api/v1/snapshot?symbols=AAPL,MSFT",
    );
    log(`quickstart: AAPL seq ${last.get("AAPL")?.seq}, MSFT seq ${last.get("MSFT")?.seq}`);
    expect(errors).toEqual([]);
    expect(last.get("AAPL")).toEqual(snap.snapshots.AAPL);
    expect(last.get("MSFT")).toEqual(snap.snapshots.MSFT);
  } finally {
    for (const s of sockets) s.close();
  }
});
