// The page's state and everything that changes it: sign-in, the rooms and their messages,
// unread counts, "seen by", typing, presence, translations, posts. The views (app.tsx) render
// it and call its methods; it calls the HTTP APIs (api.ts) and the STOMP connection
// (connection.ts), and tells the views when something changed.

import type { IMessage, StompSubscription } from "@stomp/stompjs";
import { Api, ApiError, demoToken, getConfig } from "./api";
import { StompConnection, type ConnectionState } from "./connection";
import { receiptFor, type StompErrorInfo } from "./errors";
import { idCmp, insertMessage, maxId, postProblem, unreadFrom } from "./model";
import type {
  ChatMessage,
  ChatPresence,
  ChatReceipt,
  ChatTranslation,
  ChatTyping,
  ChatUnread,
  Credentials,
  GatewayConfig,
  MemberChange,
  MessageId,
  MyRoom,
  PresenceStatus,
  Profile,
  RoomMembers,
  UnreadSnapshot,
} from "./types";

export interface Room {
  id: string;
  kind: "direct" | "group";
  name: string;
  /** A direct room: the other member (its name is empty). */
  peer?: string;
  lang?: string;
  owner?: string;
  createdAt: number;
  unread: number;
  /** My read pointer. */
  readId: MessageId;
  /** The highest id received through the room's subscription or history: the catch-up point. */
  lastId: MessageId;
  lastMessage?: ChatMessage;
  /** Messages held, ascending ids (live ones always; history once the room is opened). */
  messages: ChatMessage[];
  historyLoaded: boolean;
  /** The `before` cursor of the next older page; null: the room's beginning is shown. */
  olderCursor: MessageId | null;
  loadingOlder: boolean;
  members: RoomMembers["members"] | null;
  /** Members' read pointers ("seen by"). */
  pointers: Map<string, MessageId>;
  /** Who is typing, until when (ms since the epoch). */
  typing: Map<string, number>;
  /** message id -> language -> translation */
  translations: Map<MessageId, Map<string, ChatTranslation>>;
  /** Messages shown translated. */
  translated: Set<MessageId>;
  /** When the page learnt of the room (a refresh that started earlier does not drop it). */
  seenAt: number;
}

export interface Pending {
  clientId: string;
  room: string;
  text: string;
  state: "queued" | "sending" | "sent" | "failed";
  error?: string;
  at: number;
}

/** The one error message shown (a newer one replaces it). */
export interface Alert {
  id: number;
  text: string;
}

const CREDENTIALS_KEY = "stompgate-demo:credentials";
const OPEN_ROOM_KEY = "stompgate-demo:open-room";
/** How often the rooms list is read again (rooms others add me to have no event of mine). */
export const ROOMS_REFRESH_MS = 5000;
/** A typing: true goes out at most this often while the user types. */
const TYPING_SEND_EVERY_MS = 2000;
/** Someone else's typing indicator shows this long without a renewal. */
const TYPING_SHOWN_MS = 10000;
/** A room stays in the list this long after the page learnt of it, whatever a refresh says. */
const ROOM_GRACE_MS = 10000;
const HISTORY_PAGE = 50;

function newRoom(id: string, now: number): Room {
  return {
    id,
    kind: "group",
    name: id,
    createdAt: now,
    unread: 0,
    readId: "0",
    lastId: "0",
    messages: [],
    historyLoaded: false,
    olderCursor: null,
    loadingOlder: false,
    members: null,
    pointers: new Map(),
    typing: new Map(),
    translations: new Map(),
    translated: new Set(),
    seenAt: now,
  };
}

function uuid(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Chat {
  config: GatewayConfig | null = null;
  configError: string | null = null;
  creds: Credentials | null = null;
  conn: ConnectionState = { phase: "stopped" };
  rooms = new Map<string, Room>();
  openRoomId: string | null = null;
  presence = new Map<string, PresenceStatus>();
  /** When each user's shown status was true (an event's or a snapshot's `at`): presence events
   * from different gateway nodes can arrive out of order, and an older one must not win. */
  private presenceAt = new Map<string, number>();
  /** Whether this gateway has presence (null: not known yet). */
  presenceSupported: boolean | null = null;
  profile: Profile | null = null;
  profileSupported: boolean | null = null;
  roomsAvailable = true;
  alert: Alert | null = null;
  pending = new Map<string, Pending>();
  drafts = new Map<string, string>();
  signingIn = false;

  private api: Api | null = null;
  private connection: StompConnection | null = null;
  private subscriptions = new Map<string, StompSubscription>();
  /** Rooms refused this session (an ERROR said so): never subscribed again. */
  private refused = new Set<string>();
  private listeners = new Set<() => void>();
  private timers: number[] = [];
  private typingSentAt = new Map<string, number>();
  private alerts = 0;
  private readTimer: number | undefined;

  // -- views ------------------------------------------------------------------------------

  listen(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }

  get me(): string {
    return this.creds?.user ?? "";
  }

  get openRoom(): Room | null {
    return this.openRoomId === null ? null : (this.rooms.get(this.openRoomId) ?? null);
  }

  /** Rooms, the most recently active first. */
  get roomList(): Room[] {
    const activity = (r: Room) => r.lastMessage?.sent_at ?? r.createdAt;
    return [...this.rooms.values()].sort((a, b) => activity(b) - activity(a) || a.id.localeCompare(b.id));
  }

  label(room: Room): string {
    if (room.kind === "direct") return room.peer ?? "one-to-one chat";
    return room.name || room.id;
  }

  say(text: string): void {
    this.alerts += 1;
    this.alert = { id: this.alerts, text };
    this.changed();
  }

  dismissAlert(): void {
    this.alert = null;
    this.changed();
  }

  // -- sign-in ----------------------------------------------------------------------------

  async boot(): Promise<void> {
    try {
      this.config = await getConfig();
      this.configError = null;
    } catch (error) {
      this.configError = `The gateway cannot be reached (${(error as Error).message}).`;
      this.changed();
      return;
    }
    const stored = localStorage.getItem(CREDENTIALS_KEY);
    if (stored) {
      try {
        this.start(JSON.parse(stored) as Credentials);
        return;
      } catch {
        localStorage.removeItem(CREDENTIALS_KEY);
      }
    }
    this.changed();
  }

  /** Demo mode: `user` is a demo login; JWT mode: `token` is the user's access token. */
  async signIn(user: string, token?: string): Promise<void> {
    if (this.signingIn) return;
    this.alert = null;
    this.signingIn = true;
    this.changed();
    try {
      let creds: Credentials;
      if (token) {
        creds = { user, login: "", passcode: token, authorization: `Bearer ${token}` };
      } else {
        const answer = await demoToken(user);
        creds = {
          user: answer.user,
          login: answer.login,
          passcode: answer.passcode,
          authorization: answer.authorization,
        };
      }
      localStorage.setItem(CREDENTIALS_KEY, JSON.stringify(creds));
      this.start(creds);
    } catch (error) {
      this.say(`Sign-in refused: ${(error as Error).message}`);
    } finally {
      this.signingIn = false;
      this.changed();
    }
  }

  /** Forget the sign-in; `why` (if any) is the one message shown on the sign-in form. */
  async signOut(why?: string): Promise<void> {
    localStorage.removeItem(CREDENTIALS_KEY);
    localStorage.removeItem(OPEN_ROOM_KEY);
    const connection = this.connection;
    this.connection = null;
    for (const timer of this.timers) window.clearInterval(timer);
    this.timers = [];
    this.creds = null;
    this.api = null;
    this.rooms.clear();
    this.subscriptions.clear();
    this.refused.clear();
    this.pending.clear();
    this.drafts.clear();
    this.presence.clear();
    this.presenceAt.clear();
    this.openRoomId = null;
    this.profile = null;
    this.alert = null;
    if (why) this.say(why);
    this.changed();
    if (connection) await connection.stop();
    this.conn = { phase: "stopped" };
    this.changed();
  }

  private start(creds: Credentials): void {
    if (!this.config) return;
    this.creds = creds;
    this.api = new Api(creds.authorization);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}${this.config.ws_path}`;
    const headers: Record<string, string> = { passcode: creds.passcode };
    if (creds.login) headers.login = creds.login;
    const connection = new StompConnection(url, headers, {
      state: (state) => {
        if (this.connection !== connection) return;
        this.conn = state;
        this.changed();
      },
      connected: (user) => {
        if (this.connection !== connection) return;
        if (user && this.creds && user !== this.creds.user) {
          // The gateway knows better (a token's subject): that is who posts as "me".
          this.creds = { ...this.creds, user };
          localStorage.setItem(CREDENTIALS_KEY, JSON.stringify(this.creds));
        }
        void this.connected();
      },
      error: (error) => {
        if (this.connection === connection) this.stompError(error);
      },
    });
    this.connection = connection;
    connection.start();
    void this.refreshRooms().then(() => {
      const wanted = localStorage.getItem(OPEN_ROOM_KEY);
      if (wanted && this.rooms.has(wanted) && this.openRoomId === null) this.open(wanted);
    });
    void this.loadProfile();
    this.timers.push(
      window.setInterval(() => {
        if (document.visibilityState === "visible") void this.refreshRooms();
      }, ROOMS_REFRESH_MS),
      window.setInterval(() => this.expireTyping(), 1000),
    );
    this.changed();
  }

  reconnect(): void {
    this.alert = null;
    this.connection?.reconnectNow();
    this.changed();
  }

  /** The document became visible or got focus: what is shown is read. */
  visible(): void {
    if (this.openRoomId !== null) this.markRead(this.openRoomId);
    void this.refreshRooms();
  }

  // -- connection -------------------------------------------------------------------------

  private async connected(): Promise<void> {
    this.subscriptions.clear(); // they ended with the previous connection
    this.typingSentAt.clear();
    await this.refreshRooms();
    const connection = this.connection;
    if (!connection || !connection.connected) return;
    this.subscriptions.set(
      "unread",
      connection.subscribe("/user/queue/unread", (m) => this.onUnreadFrame(m), { id: "unread" }),
    );
    for (const room of this.rooms.values()) this.subscribeRoom(room);
    for (const post of this.pending.values()) {
      if (post.state !== "failed") this.publishPost(post); // same client_id: never a duplicate
    }
    this.changed();
  }

  private subscribeRoom(room: Room): void {
    const connection = this.connection;
    if (!connection || !connection.connected) return;
    if (this.subscriptions.has(room.id) || this.refused.has(room.id)) return;
    const subscription = connection.subscribe(`/topic/room.${room.id}`, (m) => this.onRoomFrame(room.id, m), {
      id: `room-${room.id}`,
      receipt: receiptFor.subscribe(room.id),
      "cur-max-message-id": room.lastId, // catch-up: what this page missed first, then live
    });
    this.subscriptions.set(room.id, subscription);
  }

  private stompError(error: StompErrorInfo): void {
    const scope = error.scope;
    switch (scope.kind) {
      case "signin":
        void this.signOut(`Sign-in refused: ${error.detail}`);
        return;
      case "room":
        this.closeRoom(scope.room, error.message === "Removed from room" ? "you were removed from it" : error.detail);
        return;
      case "post": {
        const post = this.pending.get(scope.clientId);
        if (post) {
          post.state = "failed";
          post.error = error.detail;
          if (!this.drafts.get(post.room)) this.drafts.set(post.room, post.text);
        }
        this.say(`Message not sent: ${error.detail}`);
        return;
      }
      case "transient":
        this.changed(); // the status line says it, and that a reconnect is on its way
        return;
      case "fatal":
        this.say(`${error.message}: ${error.detail}`);
        return;
    }
  }

  // -- rooms ------------------------------------------------------------------------------

  private async refreshRooms(): Promise<void> {
    const api = this.api;
    if (!api) return;
    const started = Date.now();
    let list: MyRoom[];
    try {
      list = await api.rooms();
    } catch (error) {
      // A background read: a node that is away (restarting, say) is the status line's news.
      if (!(error instanceof ApiError && (error.status === 0 || error.status >= 500))) {
        this.httpFailed(error, "The rooms list cannot be read");
      }
      if (error instanceof ApiError && error.missing) {
        this.roomsAvailable = false;
        this.changed();
      }
      return;
    }
    if (api !== this.api) return;
    this.roomsAvailable = true;
    const listed = new Set<string>();
    for (const entry of list) {
      if (this.refused.has(entry.id)) continue;
      listed.add(entry.id);
      this.upsertRoom(entry);
    }
    for (const room of [...this.rooms.values()]) {
      if (!listed.has(room.id) && room.seenAt < started - ROOM_GRACE_MS) this.dropRoom(room.id);
    }
    this.changed();
  }

  private upsertRoom(entry: MyRoom): Room {
    let room = this.rooms.get(entry.id);
    const isNew = room === undefined;
    if (room === undefined) {
      room = newRoom(entry.id, Date.now());
      // A room new to the page: catch up from its newest message (history shows the rest).
      room.lastId = entry.last_message?.id ?? "0";
      this.rooms.set(room.id, room);
    }
    room.kind = entry.kind;
    room.name = entry.name;
    room.lang = entry.lang;
    room.owner = entry.owner;
    room.createdAt = entry.created_at;
    if (entry.last_message && (!room.lastMessage || idCmp(entry.last_message.id, room.lastMessage.id) > 0)) {
      room.lastMessage = entry.last_message;
    }
    this.applyUnread(room, entry.unread, entry.read_id, entry.last_message?.id ?? "0");
    if (isNew) {
      if (room.kind === "direct") void this.findPeer(room);
      this.subscribeRoom(room);
    }
    return room;
  }

  private async findPeer(room: Room): Promise<void> {
    try {
      const info = await this.api!.room(room.id);
      room.peer = info.members.find((u) => u !== this.me) ?? this.me;
      this.changed();
    } catch (error) {
      this.httpFailed(error, "A room cannot be read");
    }
  }

  /** A room this session may no longer use: say so once, drop it, never subscribe again. */
  private closeRoom(id: string, why: string): void {
    if (this.refused.has(id)) return; // said already (the event and the ERROR both tell it)
    this.refused.add(id);
    const room = this.rooms.get(id);
    const name = room ? this.label(room) : id;
    this.dropRoom(id);
    this.say(`Room “${name}” is closed: ${why}`);
  }

  private dropRoom(id: string): void {
    this.subscriptions.get(id)?.unsubscribe();
    this.subscriptions.delete(id);
    this.rooms.delete(id);
    if (this.openRoomId === id) {
      this.openRoomId = null;
      localStorage.removeItem(OPEN_ROOM_KEY);
    }
    this.changed();
  }

  async createRoom(name: string, members: string[], lang: string): Promise<boolean> {
    try {
      const info = await this.api!.createRoom(name, members, lang || undefined);
      this.addRoom({ ...info, unread: 0, read_id: "0" });
      this.open(info.id);
      return true;
    } catch (error) {
      this.httpFailed(error, "The room was not created");
      return false;
    }
  }

  async openDirect(user: string): Promise<boolean> {
    try {
      const info = await this.api!.direct(user);
      const room = this.addRoom({ ...info, unread: 0, read_id: "0" });
      room.peer = info.members.find((u) => u !== this.me) ?? user;
      this.open(info.id);
      return true;
    } catch (error) {
      this.httpFailed(error, "The chat was not opened");
      return false;
    }
  }

  private addRoom(entry: MyRoom): Room {
    this.refused.delete(entry.id);
    const known = this.rooms.get(entry.id);
    if (known) return known;
    return this.upsertRoom(entry);
  }

  open(id: string | null): void {
    this.openRoomId = id;
    if (id === null) {
      localStorage.removeItem(OPEN_ROOM_KEY);
      this.changed();
      return;
    }
    localStorage.setItem(OPEN_ROOM_KEY, id);
    const room = this.rooms.get(id);
    this.changed();
    if (!room) return;
    void this.loadNewest(room);
    void this.loadMembers(room);
    void this.loadPresence(room);
  }

  private async loadNewest(room: Room): Promise<void> {
    if (room.historyLoaded) {
      this.markRead(room.id);
      return;
    }
    try {
      const page = await this.api!.history(room.id, { limit: HISTORY_PAGE });
      this.addPage(room, page.messages, page.read_pointers, page.translations);
      room.olderCursor = page.next_before;
      room.historyLoaded = true;
      this.changed();
      this.markRead(room.id);
    } catch (error) {
      this.httpFailed(error, "The messages cannot be read");
    }
  }

  async loadOlder(id: string): Promise<void> {
    const room = this.rooms.get(id);
    if (!room || room.olderCursor === null || room.loadingOlder) return;
    room.loadingOlder = true;
    this.changed();
    try {
      const page = await this.api!.history(room.id, { before: room.olderCursor, limit: HISTORY_PAGE });
      this.addPage(room, page.messages, page.read_pointers, page.translations);
      room.olderCursor = page.next_before;
    } catch (error) {
      this.httpFailed(error, "Older messages cannot be read");
    } finally {
      room.loadingOlder = false;
      this.changed();
    }
  }

  /** A replay was cut at the gateway's limit: read the rest from the history API. */
  private async fillAfter(room: Room, after: MessageId): Promise<void> {
    let cursor: MessageId | null = after;
    try {
      while (cursor !== null) {
        const page = await this.api!.history(room.id, { after: cursor, limit: 200 });
        for (const message of page.messages) this.onMessage(room, message);
        this.addPage(room, [], page.read_pointers, page.translations);
        cursor = page.next_after;
      }
    } catch (error) {
      this.httpFailed(error, "Missed messages cannot be read");
    }
    this.changed();
  }

  private addPage(
    room: Room,
    messages: ChatMessage[],
    pointers: Record<string, MessageId> | undefined,
    translations: ChatTranslation[] | undefined,
  ): void {
    for (const message of messages) {
      if (insertMessage(room.messages, message)) room.lastId = maxId(room.lastId, message.id);
    }
    const newest = room.messages[room.messages.length - 1];
    if (newest && (!room.lastMessage || idCmp(newest.id, room.lastMessage.id) > 0)) room.lastMessage = newest;
    for (const [user, id] of Object.entries(pointers ?? {})) this.movePointer(room, user, id);
    for (const t of translations ?? []) this.addTranslation(room, t);
  }

  private async loadMembers(room: Room): Promise<void> {
    try {
      const answer = await this.api!.members(room.id);
      room.members = answer.members;
      for (const member of answer.members) {
        if (member.read_id) this.movePointer(room, member.user, member.read_id);
      }
      this.changed();
    } catch (error) {
      this.httpFailed(error, "The members cannot be read");
    }
  }

  /** Show `status` for `user` unless what is shown is newer than `at`. */
  private showPresence(user: string, status: PresenceStatus, at: number): void {
    if ((this.presenceAt.get(user) ?? 0) > at) return;
    this.presenceAt.set(user, at);
    this.presence.set(user, status);
  }

  private async loadPresence(room: Room): Promise<void> {
    if (this.presenceSupported === false) return;
    try {
      const snapshot = await this.api!.roomPresence(room.id);
      this.presenceSupported = true;
      for (const entry of snapshot.users) this.showPresence(entry.user, entry.status, snapshot.at ?? 0);
      this.changed();
    } catch (error) {
      if (error instanceof ApiError && error.missing) {
        this.presenceSupported = false; // this gateway has no presence: no dots
        this.changed();
      } else {
        this.httpFailed(error, "Presence cannot be read");
      }
    }
  }

  private async loadProfile(): Promise<void> {
    try {
      this.profile = await this.api!.profile();
      this.profileSupported = true;
    } catch (error) {
      if (error instanceof ApiError && error.missing) this.profileSupported = false;
      else this.httpFailed(error, "Your profile cannot be read");
    }
    this.changed();
  }

  async setLanguage(lang: string): Promise<void> {
    try {
      this.profile = await this.api!.setLanguage(lang);
    } catch (error) {
      this.httpFailed(error, "Your language was not saved");
    }
    this.changed();
  }

  /** An HTTP call failed: a refused sign-in ends the session; anything else is said once. */
  private httpFailed(error: unknown, what: string): void {
    if (error instanceof ApiError && error.status === 401) {
      void this.signOut(`Sign-in refused: ${error.message}`);
    } else if (!(error instanceof ApiError && error.missing)) {
      this.say(`${what}: ${(error as Error).message}`);
    }
  }

  // -- frames -----------------------------------------------------------------------------

  private onRoomFrame(id: string, frame: IMessage): void {
    const room = this.rooms.get(id);
    if (!room) return;
    let event: unknown;
    try {
      event = JSON.parse(frame.body);
    } catch {
      return;
    }
    switch (frame.headers["event-type"] ?? "message") {
      case "message": {
        const message = event as ChatMessage;
        this.onMessage(room, message);
        if (frame.headers["stompgate-replay-more"] === "true") void this.fillAfter(room, message.id);
        break;
      }
      case "translation":
        this.addTranslation(room, event as ChatTranslation);
        break;
      case "receipt": {
        const receipt = event as ChatReceipt;
        this.movePointer(room, receipt.user, receipt.message_id);
        break;
      }
      case "typing": {
        const typing = event as ChatTyping;
        if (typing.user === this.me) break;
        if (typing.typing) room.typing.set(typing.user, Date.now() + TYPING_SHOWN_MS);
        else room.typing.delete(typing.user);
        break;
      }
      case "presence": {
        const presence = event as ChatPresence;
        this.presenceSupported = true;
        this.showPresence(presence.user, presence.status, presence.at ?? 0);
        break;
      }
      case "member-joined":
      case "member-left": {
        const change = event as MemberChange;
        if (change.type === "member-left" && change.user === this.me) {
          if (change.reason === "removed") this.closeRoom(room.id, `${change.by} removed you from it`);
          else this.dropRoom(room.id); // I left, on this device or another
          return;
        }
        if (this.openRoomId === room.id) void this.loadMembers(room);
        break;
      }
      default:
        return;
    }
    this.changed();
  }

  private onMessage(room: Room, message: ChatMessage): void {
    const previous = room.lastId;
    if (!insertMessage(room.messages, message)) return;
    room.lastId = maxId(room.lastId, message.id);
    if (!room.lastMessage || idCmp(message.id, room.lastMessage.id) > 0) room.lastMessage = message;
    room.typing.delete(message.sender);
    for (const [clientId, post] of this.pending) {
      if (post.room === room.id && clientId === message.client_id) this.pending.delete(clientId);
    }
    if (message.sender === this.me) {
      // Posting moves my read pointer: everything before my own message is read.
      if (idCmp(message.id, room.readId) > 0) {
        room.readId = message.id;
        room.unread = 0;
      }
    } else if (idCmp(message.id, previous) > 0 && idCmp(message.id, room.readId) > 0) {
      room.unread += 1;
      if (this.openRoomId === room.id) this.scheduleRead(room.id);
    }
  }

  private onUnreadFrame(frame: IMessage): void {
    let event: ChatUnread | UnreadSnapshot;
    try {
      event = JSON.parse(frame.body) as ChatUnread | UnreadSnapshot;
    } catch {
      return;
    }
    const entries = event.type === "unread-snapshot" ? event.rooms : [event];
    for (const entry of entries) {
      const room = this.rooms.get(entry.room);
      if (room) this.applyUnread(room, entry.unread, entry.read_id, entry.last_id);
      else void this.refreshRooms(); // a room I was added to
    }
    this.changed();
  }

  /** A server's unread count, unless what the page knows is newer. */
  private applyUnread(room: Room, unread: number, readId: MessageId, lastId: MessageId | undefined): void {
    if (idCmp(readId, room.readId) < 0) return; // an older pointer than one already seen
    room.readId = readId;
    room.unread = unreadFrom(room.messages, this.me, unread, readId, lastId);
    if (this.openRoomId === room.id && room.unread > 0) this.scheduleRead(room.id);
  }

  private movePointer(room: Room, user: string, id: MessageId): void {
    const known = room.pointers.get(user);
    if (known === undefined || idCmp(id, known) > 0) room.pointers.set(user, id);
    if (user === this.me && idCmp(id, room.readId) > 0) room.readId = id;
  }

  private addTranslation(room: Room, translation: ChatTranslation): void {
    let byLang = room.translations.get(translation.message_id);
    if (!byLang) {
      byLang = new Map();
      room.translations.set(translation.message_id, byLang);
    }
    byLang.set(translation.lang, translation);
  }

  toggleTranslation(roomId: string, messageId: MessageId): void {
    const room = this.rooms.get(roomId);
    if (!room) return;
    if (room.translated.has(messageId)) room.translated.delete(messageId);
    else room.translated.add(messageId);
    this.changed();
  }

  private expireTyping(): void {
    const now = Date.now();
    let changed = false;
    for (const room of this.rooms.values()) {
      for (const [user, until] of room.typing) {
        if (until <= now) {
          room.typing.delete(user);
          changed = true;
        }
      }
    }
    if (changed) this.changed();
  }

  // -- reading, typing, posting -----------------------------------------------------------

  private scheduleRead(id: string): void {
    window.clearTimeout(this.readTimer);
    this.readTimer = window.setTimeout(() => this.markRead(id), 300);
  }

  /** The open room is shown: move my read pointer to its newest message. */
  markRead(id: string): void {
    const room = this.rooms.get(id);
    const connection = this.connection;
    if (!room || this.openRoomId !== id || document.visibilityState !== "visible") return;
    if (!connection || !connection.connected) return;
    const newest = room.messages[room.messages.length - 1];
    if (!newest || idCmp(newest.id, room.readId) <= 0) {
      if (room.unread !== 0) {
        room.unread = 0;
        this.changed();
      }
      return;
    }
    connection.publish(`/app/rooms/${room.id}/read`, JSON.stringify({ message_id: newest.id }));
    room.readId = newest.id;
    room.unread = 0;
    this.changed();
  }

  /** The composer's text changed: say typing (at most every 2 s), or that it stopped. */
  typing(id: string, text: string): void {
    this.drafts.set(id, text);
    this.changed();
    const connection = this.connection;
    if (!connection || !connection.connected) return;
    const sent = this.typingSentAt.get(id) ?? 0;
    const now = Date.now();
    if (text.trim() && now - sent >= TYPING_SEND_EVERY_MS) {
      this.typingSentAt.set(id, now);
      connection.publish(`/app/rooms/${id}/typing`, JSON.stringify({ typing: true }));
    } else if (!text.trim() && sent) {
      this.stopTyping(id);
    }
  }

  stopTyping(id: string): void {
    const connection = this.connection;
    if (!this.typingSentAt.get(id) || !connection || !connection.connected) return;
    this.typingSentAt.delete(id);
    connection.publish(`/app/rooms/${id}/typing`, JSON.stringify({ typing: false }));
  }

  /** Why `text` cannot be posted, or null. */
  problem(text: string): string | null {
    const config = this.config;
    if (!config) return "Not connected.";
    return postProblem(text.trim(), config.chat_max_text, config.chat_max_body);
  }

  /** Post `text` to the room; the error to show (and the text stays), or null. */
  post(id: string, text: string): string | null {
    const problem = this.problem(text);
    if (problem) return problem;
    const post: Pending = { clientId: uuid(), room: id, text: text.trim(), state: "queued", at: Date.now() };
    this.pending.set(post.clientId, post);
    this.drafts.set(id, "");
    this.typingSentAt.delete(id); // a post ends typing (receivers clear it on the message)
    this.publishPost(post);
    this.changed();
    return null;
  }

  private publishPost(post: Pending): void {
    const connection = this.connection;
    if (!connection || !connection.connected) return; // sent on the next connect
    post.state = "sending";
    const receipt = receiptFor.post(post.clientId);
    connection.watchForReceipt(receipt, (frame) => {
      const room = this.rooms.get(post.room);
      const id = frame.headers["stompgate-message-id"];
      if (post.state === "sending") post.state = "sent";
      if (id && room?.messages.some((m) => m.id === id)) this.pending.delete(post.clientId);
      this.changed();
    });
    connection.publish(
      `/app/rooms/${post.room}/messages`,
      JSON.stringify({ client_id: post.clientId, text: post.text }),
      { receipt },
    );
  }

  /** A failed post goes again (same client id), or is dropped. */
  retryPost(clientId: string, again: boolean): void {
    const post = this.pending.get(clientId);
    if (!post) return;
    if (again) {
      post.state = "queued";
      post.error = undefined;
      this.publishPost(post);
    } else {
      this.pending.delete(clientId);
    }
    this.changed();
  }
}
