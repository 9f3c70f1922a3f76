// The shapes the page reads and writes: each one is a schema of the repository's schemas/
// folder (named beside it), or an HTTP answer the README documents.

/** A Snowflake message id: a decimal string (JavaScript numbers lose precision past 2**53). */
export type MessageId = string;

/** /api/config (gateway.config.v1): what the page needs to know about this node. */
export interface GatewayConfig {
  v: 1;
  auth: "dev" | "jwt";
  ws_path: string;
  chat_max_body: number;
  chat_max_text: number;
  demo_users?: string[];
}

/** POST /api/demo/token (demo.token.v1): a demo user's credentials, in --auth dev only. */
export interface DemoToken {
  v: 1;
  user: string;
  login: string;
  passcode: string;
  authorization: string;
}

/** What the page remembers across reloads (localStorage). */
export interface Credentials {
  user: string;
  login: string;
  passcode: string;
  authorization: string;
}

/** chat.message.v1 */
export interface ChatMessage {
  v: 1;
  type: "message";
  id: MessageId;
  room: string;
  sender: string;
  client_id: string;
  text: string;
  sent_at: number;
  lang?: string;
  reply_to?: MessageId;
}

/** chat.translation.v1 */
export interface ChatTranslation {
  v: 1;
  type: "translation";
  room: string;
  message_id: MessageId;
  lang: string;
  text: string;
  provider: string;
  translated_at: number;
  source_lang?: string;
}

/** chat.receipt.v1 */
export interface ChatReceipt {
  v: 1;
  type: "receipt";
  room: string;
  user: string;
  message_id: MessageId;
  read_at: number;
}

/** chat.typing.v1 */
export interface ChatTyping {
  v: 1;
  type: "typing";
  room: string;
  user: string;
  typing: boolean;
  at: number;
}

export type PresenceStatus = "online" | "away" | "offline";

/** chat.presence.v1 */
export interface ChatPresence {
  v: 1;
  type: "presence";
  user: string;
  status: PresenceStatus;
  at: number;
  room?: string;
  last_seen?: number;
}

/** chat.presence_snapshot.v1: GET /api/rooms/<room>/presence, GET /api/presence?users= */
export interface PresenceSnapshot {
  v: 1;
  at?: number;
  users: { user: string; status: PresenceStatus; last_seen?: number }[];
}

/** chat.member_joined.v1, chat.member_left.v1 */
export interface MemberChange {
  v: 1;
  type: "member-joined" | "member-left";
  room: string;
  user: string;
  by: string;
  at: number;
  role?: "member" | "owner";
  reason?: "left" | "removed";
}

/** chat.unread.v1 */
export interface ChatUnread {
  v: 1;
  type: "unread";
  room: string;
  unread: number;
  read_id: MessageId;
  last_id?: MessageId;
  at: number;
}

/** One room of chat.unread_snapshot.v1 */
export interface RoomUnread {
  room: string;
  unread: number;
  read_id: MessageId;
  last_id?: MessageId;
}

/** chat.unread_snapshot.v1 */
export interface UnreadSnapshot {
  v: 1;
  type: "unread-snapshot";
  rooms: RoomUnread[];
  at: number;
}

/** One entry of rooms.list.v1 */
export interface MyRoom {
  id: string;
  kind: "direct" | "group";
  name: string;
  created_at: number;
  unread: number;
  read_id: MessageId;
  lang?: string;
  owner?: string;
  last_message?: ChatMessage;
}

/** rooms.room.v1 */
export interface RoomInfo {
  v: 1;
  id: string;
  kind: "direct" | "group";
  name: string;
  created_at: number;
  members: string[];
  lang?: string;
  owner?: string;
}

/** rooms.members.v1 */
export interface RoomMembers {
  v: 1;
  room: string;
  members: { user: string; role: "owner" | "member"; joined_at: number; read_id?: MessageId }[];
}

/** GET /api/rooms/<room>/messages */
export interface HistoryPage {
  room: string;
  messages: ChatMessage[];
  next_before: MessageId | null;
  next_after: MessageId | null;
  read_pointers?: Record<string, MessageId>;
  translations?: ChatTranslation[];
}

/** users.profile.v1: GET/PUT /api/me/profile */
export interface Profile {
  v: 1;
  user: string;
  lang?: string;
  token_lang?: string;
  preferred_lang?: string;
}
