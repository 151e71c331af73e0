/**
 * @tickstream/client — TypeScript client for the tickstream market-data WebSocket
 * protocol v1 (subprotocol `tickstream.v1`, MessagePack frames).
 *
 * ```ts
 * import { connect } from "@tickstream/client";
 * const client = connect("wss://example.com/ws", { maxHz: 10 });
 * client.on("update", ({ symbol, state, changed }) => console.log(symbol, state.values.last, changed));
 * client.on("status", (s) => console.log(s.status, s.feed, s.detail));
 * await client.subscribe(["AAPL", "MSFT"]);
 * // with the day's 1-minute bars: history (BARS), then live (BAR)
 * client.on("bars", ({ symbol, bars }) => draw(symbol, bars));
 * client.on("bar", ({ symbol, bar, appended }) => update(symbol, bar, appended));
 * await client.subscribe(["NVDA"], { bars: "1m", barCount: 390 });
 * ```
 */
export {
  connect,
  buildUrl,
  SymbolState,
  TickstreamClient,
  type BarEvent,
  type BarsEvent,
  type ClientErrorEvent,
  type ClientErrorKind,
  type ClientEvents,
  type ClientOptions,
  type ClientStats,
  type HeartbeatOptions,
  type PingResult,
  type Quote,
  type ReconnectOptions,
  type Status,
  type StatusEvent,
  type SubscribeResult,
  type UpdateEvent,
  type VisibilityOptions,
  type VisibilitySource,
  type WebSocketCtor,
  type WebSocketLike,
} from "./client.js";
export { BarSeries, MAX_BARS, type BarApplied } from "./bars.js";
export { backoffDelay, type BackoffOptions } from "./backoff.js";
export { Emitter, type Listener } from "./emitter.js";
export {
  CloseCode,
  FIELDS_V1,
  Op,
  PROTOCOL_VERSION,
  ProtocolError,
  SUBPROTOCOL,
  SUBPROTOCOL_JSON,
  decodeFrame,
  encodeAuth,
  encodePing,
  encodeServer,
  encodeSnap,
  encodeSub,
  encodeUnsub,
  closeName,
  isValidSymbol,
  parseMessage,
  reconnectRule,
  tokenExpiryMs,
  type AuthedMsg,
  type Bar,
  type BarMsg,
  type BarsMsg,
  type FeedState,
  type ReconnectRule,
  type ServerMessage,
  type SubOptions,
} from "./protocol.js";
