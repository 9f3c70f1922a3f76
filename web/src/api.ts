// The gateway's HTTP APIs, as the page uses them. Every call but the two public ones
// (/api/config, /api/demo/token) carries the signed-in user's Authorization header.

import type {
  DemoToken,
  GatewayConfig,
  HistoryPage,
  MyRoom,
  PresenceSnapshot,
  Profile,
  RoomInfo,
  RoomMembers,
} from "./types";

/** A refused HTTP call: the status and the one sentence to show. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }

  /** The endpoint does not exist on this node (a feature not deployed, or off). */
  get missing(): boolean {
    return this.status === 404 || this.status === 405;
  }
}

async function call<T>(method: string, path: string, auth: string | null, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (auth) headers.Authorization = auth;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "the gateway cannot be reached");
  }
  const text = await response.text();
  if (!response.ok) throw new ApiError(response.status, refusalText(response, text));
  return (text ? JSON.parse(text) : null) as T;
}

/** What a refusal says: the JSON `detail` or `error` (rooms API, history API), else the status. */
function refusalText(response: Response, text: string): string {
  try {
    const body = JSON.parse(text) as { error?: string; detail?: string };
    if (body.detail || body.error) return String(body.detail || body.error);
  } catch {
    // not JSON: fall through
  }
  return `${response.status} ${response.statusText || "error"}`.trim();
}

export function getConfig(): Promise<GatewayConfig> {
  return call<GatewayConfig>("GET", "/api/config", null);
}

export function demoToken(user: string): Promise<DemoToken> {
  return call<DemoToken>("POST", "/api/demo/token", null, { user });
}

/** The signed-in user's view of the HTTP APIs. */
export class Api {
  constructor(private readonly auth: string) {}

  async rooms(): Promise<MyRoom[]> {
    return (await call<{ rooms: MyRoom[] }>("GET", "/api/rooms", this.auth)).rooms;
  }

  room(room: string): Promise<RoomInfo> {
    return call<RoomInfo>("GET", `/api/rooms/${encodeURIComponent(room)}`, this.auth);
  }

  createRoom(name: string, members: string[], lang?: string): Promise<RoomInfo> {
    const body: Record<string, unknown> = { name, members };
    if (lang) body.lang = lang;
    return call<RoomInfo>("POST", "/api/rooms", this.auth, body);
  }

  direct(user: string): Promise<RoomInfo> {
    return call<RoomInfo>("POST", "/api/rooms/direct", this.auth, { user });
  }

  members(room: string): Promise<RoomMembers> {
    return call<RoomMembers>("GET", `/api/rooms/${encodeURIComponent(room)}/members`, this.auth);
  }

  history(room: string, query: { before?: string; after?: string; limit?: number }): Promise<HistoryPage> {
    const params = new URLSearchParams();
    if (query.before) params.set("before", query.before);
    if (query.after) params.set("after", query.after);
    params.set("limit", String(query.limit ?? 50));
    return call<HistoryPage>("GET", `/api/rooms/${encodeURIComponent(room)}/messages?${params}`, this.auth);
  }

  roomPresence(room: string): Promise<PresenceSnapshot> {
    return call<PresenceSnapshot>("GET", `/api/rooms/${encodeURIComponent(room)}/presence`, this.auth);
  }

  profile(): Promise<Profile> {
    return call<Profile>("GET", "/api/me/profile", this.auth);
  }

  setLanguage(lang: string): Promise<Profile> {
    return call<Profile>("PUT", "/api/me/profile", this.auth, lang ? { lang } : {});
  }
}
