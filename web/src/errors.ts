// What an ERROR frame means for the page (docs/client-contract.md lists every `message`).
// Every ERROR closes the connection; what matters is whether reconnecting can help:
//   signin     the credentials were refused: sign in again (never retried)
//   room       one room cannot be used (refused, invalid, removed): close it, reconnect without it
//   post       one post was refused (schema, size, access): keep its text, reconnect
//   transient  the node or the broker is going away or is busy: reconnect with a growing delay
//   fatal      anything else: say it and stop; the user reconnects by hand

export type ErrorScope =
  | { kind: "signin" }
  | { kind: "room"; room: string }
  | { kind: "post"; clientId: string }
  | { kind: "transient" }
  | { kind: "fatal" };

export interface StompErrorInfo {
  /** The short, stable `message` header. */
  message: string;
  /** The first line of the body: what exactly happened. */
  detail: string;
  scope: ErrorScope;
}

/** Receipt ids the page puts on frames, so an ERROR names the frame it refuses. */
export const receiptFor = {
  subscribe: (room: string) => `sub:${room}`,
  post: (clientId: string) => `post:${clientId}`,
};

const SIGNIN = new Set(["Bad CONNECT", "Credential expired"]);

const TRANSIENT = new Set([
  "Broker connection lost",
  "Server shutting down",
  "Heart-beat timeout",
  "Idle timeout",
  "CONNECT timeout",
  "History not available",
  "SEND not confirmed",
  "SUBSCRIBE failed",
  "Rate limit exceeded",
  "Slow consumer",
  "Too many connections",
  "Limit exceeded",
  "Durable subscriptions unavailable",
]);

/** Refusals of one frame that the same frame would get again. */
const REFUSED = new Set([
  "access_refused",
  "Invalid destination",
  "Unknown destination",
  "Invalid header",
  "Invalid message",
  "Message too large",
  "not_found",
]);

export function classifyError(headers: Record<string, string>, body: string): StompErrorInfo {
  const message = headers["message"] ?? "Error";
  const detail = (body || "").split("\n", 1)[0].trim() || message;
  const receipt = headers["receipt-id"] ?? "";
  let scope: ErrorScope = { kind: "fatal" };
  if (SIGNIN.has(message)) {
    scope = { kind: "signin" };
  } else if (message === "Removed from room") {
    const room = /removed from room (\S+)/.exec(detail)?.[1];
    scope = room ? { kind: "room", room } : { kind: "transient" };
  } else if (TRANSIENT.has(message)) {
    scope = { kind: "transient" };
  } else if (REFUSED.has(message) && receipt.startsWith("sub:")) {
    scope = { kind: "room", room: receipt.slice(4) };
  } else if (REFUSED.has(message) && receipt.startsWith("post:")) {
    scope = { kind: "post", clientId: receipt.slice(5) };
  }
  return { message, detail, scope };
}
