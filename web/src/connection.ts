// One signed-in user's STOMP connection (STOMP.js over the gateway's WebSocket): connect,
// reconnect after a loss with a growing delay, and stop for good on an error that
// reconnecting cannot fix (errors.ts). Subscriptions are the caller's: after every
// (re)connect it subscribes again (with `cur-max-message-id`, so it catches up).

import { Client, type IFrame, type IMessage, type StompSubscription } from "@stomp/stompjs";
import { classifyError, type StompErrorInfo } from "./errors";

export type Phase = "connecting" | "online" | "waiting" | "stopped";

export interface ConnectionState {
  phase: Phase;
  /** waiting: when the next attempt starts (ms since the epoch). */
  retryAt?: number;
  /** Why the last connection ended (an ERROR's message, or "connection closed"). */
  reason?: string;
}

export interface ConnectionHandlers {
  state(state: ConnectionState): void;
  /** `user`: the CONNECTED frame's user-name (who the gateway says this is). */
  connected(user: string | undefined): void;
  error(error: StompErrorInfo): void;
}

/** Delays between attempts, ms; the last one repeats. A random quarter is added to each. */
const BACKOFF = [500, 1000, 2000, 4000, 8000];

const MAX_REFUSALS_A_MINUTE = 5;

export class StompConnection {
  private readonly client: Client;
  private attempt = 0;
  private timer: number | undefined;
  private stopped = false;
  private lastError: StompErrorInfo | null = null;
  /** When the recent per-frame refusals came: past a few a minute, stop (never a loop). */
  private refusals: number[] = [];

  constructor(
    url: string,
    connectHeaders: Record<string, string>,
    private readonly on: ConnectionHandlers,
  ) {
    this.client = new Client({
      brokerURL: url,
      connectHeaders,
      reconnectDelay: 0, // reconnects are ours: a delay that grows, none after a fatal error
      connectionTimeout: 8000,
      heartbeatIncoming: 10000,
      heartbeatOutgoing: 10000,
    });
    this.client.onConnect = (frame: IFrame) => {
      this.attempt = 0;
      this.lastError = null;
      this.on.state({ phase: "online" });
      this.on.connected(frame.headers["user-name"]);
    };
    this.client.onStompError = (frame: IFrame) => {
      this.lastError = classifyError(frame.headers, frame.body);
      this.on.error(this.lastError);
    };
    this.client.onWebSocketClose = () => void this.closed();
  }

  get connected(): boolean {
    return this.client.connected;
  }

  start(): void {
    this.stopped = false;
    this.on.state({ phase: "connecting" });
    this.client.activate();
  }

  /** Sign-out, or an error nobody should retry: close and never reconnect. */
  async stop(reason?: string): Promise<void> {
    this.stopped = true;
    window.clearTimeout(this.timer);
    await this.client.deactivate();
    this.on.state({ phase: "stopped", reason });
  }

  /** Try again now (the "Reconnect" button). */
  reconnectNow(): void {
    window.clearTimeout(this.timer);
    this.stopped = false;
    this.attempt = 0;
    this.on.state({ phase: "connecting" });
    void this.client.deactivate().then(() => this.client.activate());
  }

  subscribe(
    destination: string,
    callback: (message: IMessage) => void,
    headers: Record<string, string>,
  ): StompSubscription {
    return this.client.subscribe(destination, callback, headers);
  }

  publish(destination: string, body: string, headers: Record<string, string> = {}): void {
    this.client.publish({
      destination,
      body,
      headers: { "content-type": "application/json", ...headers },
    });
  }

  /** Calls `callback` with the RECEIPT frame of `receiptId`. */
  watchForReceipt(receiptId: string, callback: (frame: IFrame) => void): void {
    this.client.watchForReceipt(receiptId, callback);
  }

  private async closed(): Promise<void> {
    const error = this.lastError;
    this.lastError = null;
    await this.client.deactivate(); // nothing of STOMP.js's own retries: we decide
    if (this.stopped) return;
    if (error && (error.scope.kind === "signin" || error.scope.kind === "fatal")) {
      this.stopped = true;
      this.on.state({ phase: "stopped", reason: error.message });
      return;
    }
    // Per-frame refusals (a room, a post) say nothing about the connection: reconnect at once
    // (the caller no longer sends the refused frame), unless they keep coming.
    const perFrame = error !== null && (error.scope.kind === "room" || error.scope.kind === "post");
    if (perFrame) {
      const now = Date.now();
      this.refusals = [...this.refusals.filter((t) => now - t < 60000), now];
      if (this.refusals.length > MAX_REFUSALS_A_MINUTE) {
        this.stopped = true;
        this.on.state({ phase: "stopped", reason: error.message });
        return;
      }
    }
    const base = perFrame ? 100 : BACKOFF[Math.min(this.attempt, BACKOFF.length - 1)];
    const delay = base + Math.round(Math.random() * base * 0.25);
    if (!perFrame) this.attempt += 1;
    this.on.state({
      phase: "waiting",
      retryAt: Date.now() + delay,
      reason: error ? error.message : "connection closed",
    });
    this.timer = window.setTimeout(() => {
      if (this.stopped) return;
      this.on.state({ phase: "connecting" });
      this.client.activate();
    }, delay);
  }
}
