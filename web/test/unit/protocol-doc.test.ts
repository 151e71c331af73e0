/**
 * docs/PROTOCOL.md as test vectors for the SDK, as codec/protocol_doc_test.go uses it for the
 * server: every wire example decodes with the SDK to the messages its label names, the JSON
 * form to the same messages as the MessagePack one; every client example is what the SDK's
 * encoders send; and the close-code table's names and reconnect rules are the SDK's.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeMulti } from "@msgpack/msgpack";
import { describe, expect, it } from "vitest";
import { closeName, decodeFrame, encodeAuth, encodePing, encodeSnap, encodeSub, encodeUnsub, Op, reconnectRule } from "../../src/sdk/index.js";

const DOC = readFileSync(join(__dirname, "..", "..", "..", "docs", "PROTOCOL.md"), "utf8");
const OPS: Record<string, number> = Object.fromEntries(Object.entries(Op).map(([k, v]) => [k, v]));

interface Example {
  line: number;
  client: boolean;
  ops: string[];
  bin: Uint8Array;
  json: string;
}

function examples(): Example[] {
  const lines = DOC.split("\n");
  const out: Example[] = [];
  const block = (from: number, info: string): [string[], number] => {
    let i = from;
    while (lines[i]!.trim() === "" || lines[i]!.startsWith("(")) i++;
    if (lines[i] !== "```" + info) throw new Error(`line ${i + 1}: want a \`\`\`${info} block`);
    const body: string[] = [];
    for (i++; lines[i] !== "```"; i++) body.push(lines[i]!);
    return [body, i + 1];
  };
  for (let i = 0; i < lines.length; i++) {
    const m = /^Wire example \((client → server|server → client)\): ([A-Z]+(?:, [A-Z]+)*)$/.exec(lines[i]!);
    if (!m) continue;
    const [hex, next] = block(i + 1, "hex");
    const [json] = block(next, "json");
    const bytes = hex.flatMap((l) => l.split("#")[0]!.trim().split(/\s+/).filter(Boolean)).map((b) => parseInt(b, 16));
    out.push({ line: i + 1, client: m[1] === "client → server", ops: m[2]!.split(", "), bin: new Uint8Array(bytes), json: json.join("\n") });
  }
  return out;
}

const all = examples();

describe("PROTOCOL.md wire examples", () => {
  it("finds the examples of every message", () => {
    const seen = new Set(all.flatMap((e) => e.ops));
    for (const name of Object.keys(OPS)) expect(seen, `no wire example of ${name}`).toContain(name);
  });

  for (const ex of all.filter((e) => !e.client)) {
    it(`decodes line ${ex.line}: ${ex.ops.join(", ")}`, () => {
      const bin = decodeFrame(ex.bin);
      const json = decodeFrame(ex.json);
      expect(bin.map((m) => m.op)).toEqual(ex.ops.map((o) => OPS[o]));
      // The doc's numbers are exact in both encodings: the two decode alike.
      expect(json).toEqual(bin);
    });
  }

  for (const ex of all.filter((e) => e.client)) {
    it(`encodes line ${ex.line}: ${ex.ops.join(", ")} as the SDK sends it`, () => {
      const msgs = [...decodeMulti(ex.bin)] as unknown[][];
      expect(msgs.map((m) => m[0])).toEqual(ex.ops.map((o) => OPS[o]));
      expect(ex.json.split("\n").map((l) => JSON.parse(l))).toEqual(msgs);
      for (const m of msgs) {
        const [op, id, arg, opts] = m as [number, number, unknown, Record<string, unknown> | undefined];
        let sent: Uint8Array;
        switch (op) {
          case Op.SUB:
            sent = encodeSub(id, arg as string[], opts as never);
            break;
          case Op.UNSUB:
            sent = encodeUnsub(id, arg as string[]);
            break;
          case Op.SNAP:
            sent = encodeSnap(id, arg as string[]);
            break;
          case Op.PING:
            sent = encodePing(id, arg as number);
            break;
          case Op.AUTH:
            sent = encodeAuth(id, arg as string);
            break;
          default:
            throw new Error(`op ${op} is not a client message`);
        }
        expect([...decodeMulti(sent)][0]).toEqual(m);
      }
    });
  }
});

describe("PROTOCOL.md close codes (§12)", () => {
  const section = DOC.slice(DOC.indexOf("## 12. Close codes"), DOC.indexOf("\n## 13."));
  const rows = [...section.matchAll(/^\| (\d{4}) \| ([a-z ]+) \| (backoff|new credentials|final) \| /gm)];
  it("has the table", () => expect(rows.length).toBeGreaterThanOrEqual(12));
  for (const [, code, name, rule] of rows) {
    it(`${code} ${name}: ${rule}`, () => {
      expect(closeName(Number(code))).toBe(name);
      expect(reconnectRule(Number(code))).toBe(rule);
    });
  }
});
