/** Starts and stops a tickstream server for the end-to-end test. */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import type { WebSocketCtor } from "../../src/sdk/index.js";

export const WEB_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const REPO_DIR = resolve(WEB_DIR, "..");
export const RESULTS_DIR = join(WEB_DIR, "test-results");

export function log(...a: unknown[]): void {
  console.log(`[e2e ${new Date().toISOString().slice(11, 23)}]`, ...a);
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

let built: { cmd: string; args: string[]; label: string } | undefined;

/**
 * The server command: TICKSTREAM_MOCK=1 runs the Node mock (scripts/mock-server.mjs),
 * TICKSTREAM_BIN a prebuilt binary; otherwise `go build ./cmd/tickstream` once into a temp dir
 * (equivalent to `go run`, but neither a restart nor a second server recompiles).
 */
export function serverCommand(): { cmd: string; args: string[]; label: string } {
  built ??= buildCommand();
  return built;
}

function buildCommand(): { cmd: string; args: string[]; label: string } {
  if (process.env.TICKSTREAM_MOCK === "1") {
    return { cmd: process.execPath, args: [join(WEB_DIR, "scripts", "mock-server.mjs")], label: "mock server" };
  }
  let bin = process.env.TICKSTREAM_BIN;
  if (!bin) {
    if (!existsSync(join(REPO_DIR, "cmd", "tickstream"))) throw new Error("cmd/tickstream does not exist yet and TICKSTREAM_BIN is not set");
    bin = join(mkdtempSync(join(tmpdir(), "tickstream-e2e-")), "tickstream");
    log("go build ./cmd/tickstream");
    const t0 = Date.now();
    const r = spawnSync("go", ["build", "-o", bin, "./cmd/tickstream"], { cwd: REPO_DIR, stdio: "inherit", timeout: 600_000 });
    if (r.status !== 0) throw new Error(`go build ./cmd/tickstream failed (${r.status ?? r.signal})`);
    log(`built in ${Date.now() - t0} ms`);
  }
  return { cmd: bin, args: ["serve"], label: bin };
}

export class Server {
  proc: ChildProcess | undefined;
  private runs = 0;
  /**
   * @param flags more `tickstream serve` flags (e.g. --sim-duration); read at every start(),
   * so a test may change them before a restart.
   */
  constructor(
    readonly port: number,
    public flags: string[] = [],
    private readonly command = serverCommand(),
  ) {}

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    mkdirSync(RESULTS_DIR, { recursive: true });
    // The port keeps the logs of several servers in one test file apart.
    const logPath = join(RESULTS_DIR, `server-${this.port}-${++this.runs}.log`);
    const out = createWriteStream(logPath);
    const args = [...this.command.args, "--listen", `127.0.0.1:${this.port}`, "--demo-controls", ...this.flags];
    log(`start ${this.command.label} ${args.join(" ")} (log: ${logPath})`);
    const p = spawn(this.command.cmd, args, { cwd: REPO_DIR, stdio: ["ignore", "pipe", "pipe"] });
    p.stdout!.pipe(out);
    p.stderr!.pipe(out);
    this.proc = p;
    const exited = new Promise<never>((_, rej) =>
      p.once("exit", (code, sig) => rej(new Error(`server exited early (${code ?? sig}); see ${logPath}`))),
    );
    exited.catch(() => {});
    await Promise.race([this.waitReady(120_000), exited]);
  }

  async waitReady(timeoutMs: number): Promise<void> {
    const t0 = Date.now();
    for (;;) {
      try {
        const r = await fetch(`${this.base}/readyz`, { signal: AbortSignal.timeout(2000) });
        if (r.status === 200) {
          log(`ready after ${Date.now() - t0} ms`);
          return;
        }
      } catch {
        /* not listening yet */
      }
      if (Date.now() - t0 > timeoutMs) throw new Error(`server not ready after ${timeoutMs} ms`);
      await sleep(200);
    }
  }

  /** Kills the process (SIGKILL by default: a crash, no goodbye frames) and waits for it. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise<void>((res) => p.once("exit", () => res()));
    p.kill(signal);
    const t = setTimeout(() => p.kill("SIGKILL"), 15_000);
    await done;
    clearTimeout(t);
    this.proc = undefined;
  }

  async post(path: string): Promise<Response> {
    const r = await fetch(this.base + path, { method: "POST", signal: AbortSignal.timeout(10_000) });
    if (!r.ok) throw new Error(`POST ${path}: HTTP ${r.status} ${await r.text()}`);
    return r;
  }

  async get<T>(path: string): Promise<T> {
    const r = await fetch(this.base + path, { signal: AbortSignal.timeout(10_000) });
    if (!r.ok) throw new Error(`GET ${path}: HTTP ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `ws`'s WebSocket, subclassed to push every socket it opens onto `sockets`: a test sees each
 * connection (reconnects, subprotocol). The cast: the subclass's handlers take ws's own event
 * types, not the SDK's `unknown`.
 */
export function trackedWebSocket(sockets: WebSocket[]): WebSocketCtor {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  } as unknown as WebSocketCtor;
}
