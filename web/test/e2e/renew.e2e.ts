/**
 * In-band token renewal (AUTH, op 5) against a real `tickstream serve --auth jwt`: the SDK,
 * given a getToken callback, renews a short-lived token before it expires, in both
 * subprotocols, and keeps one connection and its stream past the first token's exp. Without
 * renewal the same token closes the connection with 4001.
 */
import { createHmac } from "node:crypto";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type TickstreamClient } from "../../src/sdk/index.js";
import { Server, freePort, log, sleep, trackedWebSocket } from "./harness.js";

const SECRET = "e2e-secret-of-at-least-32-bytes!!";

/** An HS256 JWT, signed as the server checks it. */
function mint(syms: string[], ttlSec: number): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ syms, exp: Math.floor(Date.now() / 1000) + ttlSec })}`;
  return `${body}.${createHmac("sha256", SECRET).update(body).digest("base64url")}`;
}

let server: Server;
beforeAll(async () => {
  if (process.env.TICKSTREAM_MOCK === "1") return;
  server = new Server(await freePort(), ["--symbols", "10", "--rate", "200", "--auth", "jwt", "--jwt-secret", SECRET]);
  await server.start();
});
afterAll(async () => {
  await server?.kill("SIGTERM");
});

describe.skipIf(process.env.TICKSTREAM_MOCK === "1")("token renewal against a real server", () => {
  for (const format of ["msgpack", "json"] as const) {
    it(`renews a 3 s token in-band and keeps streaming on one socket (${format})`, async () => {
      const sockets: WebSocket[] = [];
      let calls = 0;
      const client: TickstreamClient = connect(`ws://127.0.0.1:${server.port}/ws`, {
        WebSocket: trackedWebSocket(sockets),
        visibility: false,
        format,
        getToken: () => (++calls === 1 ? mint(["AAPL", "MSFT"], 3) : mint(["AAPL"], 3600)),
      });
      const dropped: string[] = [];
      client.on("error", (e) => {
        if (e.code === 403) dropped.push(...(e.symbols ?? []));
      });
      try {
        const sub = await client.subscribe(["AAPL", "MSFT"]);
        expect(sub.accepted.sort()).toEqual(["AAPL", "MSFT"]);
        await sleep(5000); // past the first token's exp
        const seq = client.state("AAPL")!.seq;
        await sleep(1000);
        log(`${format}: ${sockets.length} socket(s), ${calls} token(s), AAPL seq ${seq} → ${client.state("AAPL")!.seq}`);
        expect(sockets).toHaveLength(1);
        expect(calls).toBe(2);
        expect(client.status).toBe("live");
        expect(client.state("AAPL")!.seq).toBeGreaterThan(seq);
        // The renewed grant has no MSFT: the server dropped it and said so.
        expect(dropped).toEqual(["MSFT"]);
        expect(client.state("MSFT")!.error?.code).toBe(403);
      } finally {
        client.close();
      }
    });
  }

  it("without renewal the token's exp closes the connection with 4001", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws?symbols=AAPL&token=${mint(["*"], 2)}`, "tickstream.v1");
    const code = await new Promise<number>((res) => ws.on("close", (c) => res(c)));
    expect(code).toBe(4001);
  });
});
