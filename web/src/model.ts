// Pure helpers over the page's data: id order, merging messages, unread arithmetic, "seen by",
// the length check. No I/O, no DOM.

import type { ChatMessage, ChatTranslation, MessageId } from "./types";

/** Compares two Snowflake ids (decimal strings) as numbers. */
export function idCmp(a: MessageId, b: MessageId): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function maxId(a: MessageId, b: MessageId): MessageId {
  return idCmp(a, b) >= 0 ? a : b;
}

/** Inserts `message` into `list` (ascending ids) unless its id is there; true if inserted. */
export function insertMessage(list: ChatMessage[], message: ChatMessage): boolean {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (idCmp(list[mid].id, message.id) < 0) low = mid + 1;
    else high = mid;
  }
  if (low < list.length && list[low].id === message.id) return false;
  list.splice(low, 0, message);
  return true;
}

/**
 * The unread count of a room from a server's count (`unread` after `readId`, counted up to
 * `lastId`) plus the messages the page holds above `lastId` that others sent after `readId`.
 */
export function unreadFrom(
  held: readonly ChatMessage[],
  me: string,
  unread: number,
  readId: MessageId,
  lastId: MessageId | undefined,
): number {
  if (lastId === undefined) return unread;
  let extra = 0;
  for (const m of held) {
    if (m.sender !== me && idCmp(m.id, lastId) > 0 && idCmp(m.id, readId) > 0) extra += 1;
  }
  return unread + extra;
}

/**
 * For each message id, the other members whose read pointer reached it last ("seen by"): a
 * member is shown under the newest message up to their pointer that someone else sent.
 */
export function seenBy(
  messages: readonly ChatMessage[],
  pointers: ReadonlyMap<string, MessageId>,
  me: string,
): Map<MessageId, string[]> {
  const out = new Map<MessageId, string[]>();
  for (const [user, pointer] of pointers) {
    if (user === me) continue;
    let found: ChatMessage | undefined;
    for (let i = messages.length - 1; i >= 0; i -= 1) {
      if (messages[i].sender !== user && idCmp(messages[i].id, pointer) <= 0) {
        found = messages[i];
        break;
      }
    }
    if (found === undefined) continue;
    const users = out.get(found.id) ?? [];
    users.push(user);
    out.set(found.id, users.sort());
  }
  return out;
}

/** The translation to show for a message: the reader's language if there is one, else the first. */
export function pickTranslation(
  translations: ReadonlyMap<string, ChatTranslation> | undefined,
  preferred: string | undefined,
): ChatTranslation | undefined {
  if (!translations || translations.size === 0) return undefined;
  if (preferred) {
    const base = preferred.toLowerCase().split("-")[0];
    for (const [lang, t] of translations) {
      if (lang.toLowerCase().split("-")[0] === base) return t;
    }
  }
  return translations.values().next().value;
}

/** A stand-in client id of the longest kind the page makes (for the size check). */
const CLIENT_ID_SIZE = 36;

/**
 * Why `text` cannot be posted (empty, over the schema's characters, over the chat layer's
 * body bytes), or null. The gateway would refuse it with an ERROR that ends the session.
 */
export function postProblem(text: string, maxChars: number, maxBody: number): string | null {
  if (!text.trim()) return "Type a message first.";
  const chars = [...text].length;
  if (chars > maxChars) {
    return `Too long: ${chars.toLocaleString("en")} characters, at most ${maxChars.toLocaleString("en")}. Nothing was sent; your text is kept.`;
  }
  const body = JSON.stringify({ client_id: "x".repeat(CLIENT_ID_SIZE), text });
  const bytes = new TextEncoder().encode(body).length;
  if (bytes > maxBody) {
    return `Too long: ${bytes.toLocaleString("en")} bytes, at most ${maxBody.toLocaleString("en")}. Nothing was sent; your text is kept.`;
  }
  return null;
}

/** HH:MM for today's messages, else a short date and time. */
export function shortTime(ms: number, now: number = Date.now()): string {
  const d = new Date(ms);
  const sameDay = new Date(now).toDateString() === d.toDateString();
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return sameDay ? time : `${d.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}
