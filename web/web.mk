# Makefile fragment for the browser dashboard and the TypeScript SDK (@tickstream/client).
# The root Makefile includes it:  include web/web.mk
#
#   make web            npm ci (only when node_modules is missing or stale), type-check, vite build
#                       into web/dist/app, which web/embed.go embeds: build the Go binary after it
#   make test-web-unit  vitest unit tests of the SDK (fake WebSocket)
#   make test-web-e2e   against a real `tickstream serve`: the SDK in Node (sdk.e2e.ts) and the
#                       dashboard in headless Chromium (dashboard.e2e.ts)
#                       (TICKSTREAM_BIN=path uses a prebuilt binary; otherwise go build)
#   make chromium       installs Debian's chromium when /usr/bin/chromium is missing (needs root)

WEB_DIR  := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
NPM      ?= npm
CHROMIUM ?= /usr/bin/chromium

.PHONY: web web-deps test-web test-web-unit test-web-e2e chromium web-clean

# npm ci rewrites node_modules/.package-lock.json; re-run it when package.json or the lockfile
# is newer. The postinstall script writes node_modules/go.mod so that `go build ./...` and
# `go vet ./...` never descend into node_modules.
$(WEB_DIR)/node_modules/.package-lock.json: $(WEB_DIR)/package.json $(WEB_DIR)/package-lock.json
	cd $(WEB_DIR) && $(NPM) ci --no-audit --no-fund
	@touch $@

web-deps: $(WEB_DIR)/node_modules/.package-lock.json
	@test -f $(WEB_DIR)/node_modules/go.mod || node $(WEB_DIR)/scripts/go-guard.mjs

web: web-deps
	cd $(WEB_DIR) && $(NPM) run --silent build

test-web-unit: web-deps
	cd $(WEB_DIR) && $(NPM) run --silent typecheck && $(NPM) test --silent

chromium:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		echo "installing chromium (Debian package)"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi

test-web-e2e: web chromium
	cd $(WEB_DIR) && CHROMIUM_PATH="$(CHROMIUM)" $(NPM) run --silent test:e2e

test-web: test-web-unit test-web-e2e

web-clean:
	rm -rf $(WEB_DIR)/dist/app $(WEB_DIR)/test-results
