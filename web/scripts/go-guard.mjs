// Writes node_modules/go.mod after every npm install/ci. Some npm packages ship
// .go files; a go.mod makes node_modules a separate (empty) Go module, so the
// repository's `go build ./...` and `go vet ./...` never descend into it.
import { existsSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const nm = join(dirname(fileURLToPath(import.meta.url)), "..", "node_modules");
if (existsSync(nm)) {
  writeFileSync(join(nm, "go.mod"), "// Guard: keeps Go tooling out of node_modules.\nmodule nodemodulesguard\n\ngo 1.21\n");
}
