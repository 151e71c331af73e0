import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { connect, tokenExpiryMs, type ClientErrorEvent, type TickstreamClient } from "../../src/sdk/index.js";
import { FakeWebSocket, HELLO } from "./fake-websocket.js";

/** An unsigned JWT whose payload has `exp` (seconds): the client never checks signatures. */
function jwt(expSec: number, sub = "u"): string {
  const b64 = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  return `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, exp: expSec })}.sig`;
}

let client: TickstreamClient | undefined;
beforeEach(() => {
  vi.useFakeTimers({ now: 1_764_072_000_000 });
  FakeWebSocket.reset();
});
afterEach(() => {
  client?.close();
  client = undefined;
  vi.useRealTimers();
});

/** Connects with getToken handing out `tokens` in turn, and opens the socket with HELLO. */
async function start(tokens: string[]) {
  let n = 0;
  const errors: ClientErrorEvent[] = [];
  client = connect("ws://127.0.0.1:9/ws", {
    WebSocket: FakeWebSocket,
    visibility: false,
    random: () => 0,
    getToken: () => tokens[Math.min(n++, tokens.length - 1)]!,
  });
  client.on("error", (e) => errors.push(e));
  await vi.advanceTimersByTimeAsync(0);
  const ws = FakeWebSocket.last;
  ws.serverOpen();
  ws.serverSend(HELLO(0)); // no heartbeat watchdog over the minutes simulated here
  return { ws, errors, fetched: () => n };
}

const nowSec = () => Math.floor(Date.now() / 1000);

describe("token renewal (AUTH, op 5)", () => {
  it("reads exp from a JWT, and nothing from other tokens", () => {
    expect(tokenExpiryMs(jwt(1_764_075_600))).toBe(1_764_075_600_000);
    expect(tokenExpiryMs("opaque-token")).toBeUndefined();
    expect(tokenExpiryMs("a.!!!.c")).toBeUndefined();
    expect(tokenExpiryMs(undefined)).toBeUndefined();
  });

  it("sends a fresh token in-band at 80% of the token's life and re-arms on AUTHED", async () => {
    const first = jwt(nowSec() + 100);
    const second = jwt(nowSec() + 1000);
    const { ws } = await start([first, second, jwt(nowSec() + 5000)]);
    await vi.advanceTimersByTimeAsync(79_000);
    expect(ws.sentOps(5)).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_000);
    const auth = ws.sentOps(5)[0] as [number, number, string];
    expect(auth[2]).toBe(second);
    ws.serverSend([28, auth[1], (nowSec() + 920) * 1e6]);
    // Re-armed at 80% of the new token's remaining life (920 s), on the same socket.
    await vi.advanceTimersByTimeAsync(735_000);
    expect(ws.sentOps(5)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(ws.sentOps(5)).toHaveLength(2);
    expect(FakeWebSocket.instances).toHaveLength(1);
    expect(client!.status).toBe("live");
  });

  it("keeps the old token after ERROR 401 and tries again, at most 30 s later", async () => {
    const { ws, errors } = await start([jwt(nowSec() + 200), jwt(nowSec() + 1000)]);
    await vi.advanceTimersByTimeAsync(160_000);
    const auth = ws.sentOps(5)[0] as [number, number, string];
    ws.serverSend([25, auth[1], 401, "token is expired"]);
    expect(errors).toContainEqual({ kind: "server", code: 401, message: "token is expired", id: auth[1], symbols: [] });
    await vi.advanceTimersByTimeAsync(19_000);
    expect(ws.sentOps(5)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1_000); // half the 40 s left
    expect(ws.sentOps(5)).toHaveLength(2);
  });

  it("does not send a token that lasts no longer than the current one", async () => {
    const same = jwt(nowSec() + 100);
    const { ws, errors } = await start([same, same]);
    await vi.advanceTimersByTimeAsync(80_000);
    expect(ws.sentOps(5)).toEqual([]);
    expect(errors.at(-1)).toMatchObject({ kind: "auth", message: expect.stringMatching(/no token that lasts longer/) });
  });

  it("marks the symbols a renewed grant drops as refused", async () => {
    const { ws } = await start([jwt(nowSec() + 100), jwt(nowSec() + 1000)]);
    void client!.subscribe(["AAPL", "TSLA"]);
    const [, subId] = ws.sentOps(1)[0] as [number, number];
    ws.serverSend([21, subId, [["AAPL", 1], ["TSLA", 2]]], [22, 1, 5, { 1: 10 }], [22, 2, 7, { 1: 20 }]);
    await vi.advanceTimersByTimeAsync(80_000);
    const auth = ws.sentOps(5)[0] as [number, number, string];
    ws.serverSend([25, auth[1], 403, "not entitled", ["TSLA"]], [28, auth[1], (nowSec() + 920) * 1e6]);
    expect(client!.state("TSLA")!.error).toEqual({ code: 403, message: "not entitled" });
    expect(client!.state("TSLA")!.ready).toBe(false);
    expect(client!.state("AAPL")!.error).toBeUndefined();
    // A late DELTA for the dropped sid is not applied to TSLA.
    ws.serverSend([23, 2, 8, { 1: 21 }]);
    expect(client!.state("TSLA")!.values.bid).toBe(20);
  });

  it("renews nothing without getToken, or with renewToken false", async () => {
    client = connect("ws://127.0.0.1:9/ws", { WebSocket: FakeWebSocket, visibility: false, token: jwt(nowSec() + 100) });
    await vi.advanceTimersByTimeAsync(0);
    FakeWebSocket.last.serverOpen();
    FakeWebSocket.last.serverSend(HELLO(0));
    await vi.advanceTimersByTimeAsync(90_000);
    expect(FakeWebSocket.last.sentOps(5)).toEqual([]);
  });
});
