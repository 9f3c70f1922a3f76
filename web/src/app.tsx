// The views: sign-in, the rooms list, one room (members, messages, typing, composer), the
// connection state and the one error message. They render the Chat's state and call it.

import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import type { Chat, Pending, Room } from "./chat";
import { pickTranslation, seenBy, shortTime } from "./model";
import type { ChatMessage, PresenceStatus } from "./types";

/**
 * Re-renders the caller whenever the chat's state changes. It listens from the commit of the
 * first render on (a layout effect: a plain effect waits for the next frame, and a change
 * before it, say the config answering fast, would be lost), and renders once more then for
 * anything that changed before.
 */
function useChat(chat: Chat): void {
  const [, setVersion] = useState(0);
  useLayoutEffect(() => {
    const stop = chat.listen(() => setVersion((v) => v + 1));
    setVersion((v) => v + 1);
    return stop;
  }, [chat]);
}

const LANGUAGES: [string, string][] = [
  ["", "not set"],
  ["en", "English"],
  ["es", "Spanish"],
];

export function App({ chat }: { chat: Chat }) {
  useChat(chat);
  useEffect(() => {
    const seen = () => {
      if (document.visibilityState === "visible") chat.visible();
    };
    document.addEventListener("visibilitychange", seen);
    window.addEventListener("focus", seen);
    return () => {
      document.removeEventListener("visibilitychange", seen);
      window.removeEventListener("focus", seen);
    };
  }, [chat]);
  const room = chat.openRoom;
  return (
    <div class="page">
      <header class="top">
        <h1>
          <img src="/static/favicon.svg" alt="" width={24} height={24} /> stompgate demo chat
        </h1>
        {chat.creds && <Status chat={chat} />}
        {chat.creds && <Me chat={chat} />}
      </header>
      <div class="alert-slot" role="alert" aria-atomic="true">
        {chat.alert && (
          <p class="alert" key={chat.alert.id} data-alert-id={chat.alert.id}>
            <span>{chat.alert.text}</span>
            <button type="button" class="link" onClick={() => chat.dismissAlert()}>
              Dismiss
            </button>
          </p>
        )}
      </div>
      {chat.configError ? (
        <main class="center">
          <p>{chat.configError}</p>
          <button type="button" onClick={() => void chat.boot()}>
            Try again
          </button>
        </main>
      ) : !chat.config ? (
        <main class="center">
          <p>Loading…</p>
        </main>
      ) : !chat.creds ? (
        <SignIn chat={chat} />
      ) : (
        <div class={room ? "layout room-open" : "layout"}>
          <Rooms chat={chat} />
          {room ? (
            <RoomView chat={chat} room={room} key={room.id} />
          ) : (
            <main class="room empty" aria-label="No room open">
              <p>{chat.roomsAvailable ? "Pick a room, create one, or chat with someone." : "This gateway runs without a store (--store): there are no rooms to show."}</p>
            </main>
          )}
        </div>
      )}
    </div>
  );
}

function Status({ chat }: { chat: Chat }) {
  const [, tick] = useState(0);
  const state = chat.conn;
  useEffect(() => {
    if (state.phase !== "waiting") return;
    const timer = window.setInterval(() => tick((n) => n + 1), 500);
    return () => window.clearInterval(timer);
  }, [state.phase]);
  let text: string;
  switch (state.phase) {
    case "online":
      text = "Connected";
      break;
    case "connecting":
      text = "Connecting…";
      break;
    case "waiting": {
      const seconds = Math.max(0, Math.ceil(((state.retryAt ?? 0) - Date.now()) / 1000));
      text = `Connection lost (${state.reason}); reconnecting in ${seconds} s`;
      break;
    }
    default:
      text = state.reason ? `Disconnected (${state.reason})` : "Disconnected";
  }
  return (
    <div class={`status ${state.phase}`}>
      <span role="status" data-phase={state.phase}>
        <span class="status-dot" aria-hidden="true" />
        {text}
      </span>
      {(state.phase === "waiting" || state.phase === "stopped") && (
        <button type="button" class="small" onClick={() => chat.reconnect()}>
          Reconnect now
        </button>
      )}
    </div>
  );
}

function Me({ chat }: { chat: Chat }) {
  return (
    <div class="me">
      <span>
        Signed in as <strong data-me>{chat.me}</strong>
      </span>
      {chat.profileSupported && (
        <label class="inline" title="The language translations are made into for you">
          My language{" "}
          <select
            value={chat.profile?.lang ?? ""}
            onChange={(e) => void chat.setLanguage((e.currentTarget as HTMLSelectElement).value)}
          >
            {LANGUAGES.map(([code, name]) => (
              <option value={code} key={code}>
                {name}
              </option>
            ))}
          </select>
        </label>
      )}
      <button type="button" class="small" onClick={() => void chat.signOut()}>
        Sign out
      </button>
    </div>
  );
}

function SignIn({ chat }: { chat: Chat }) {
  const config = chat.config!;
  const demo = config.auth === "dev";
  const [user, setUser] = useState("");
  const [token, setToken] = useState("");
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => first.current?.focus(), []);
  return (
    <main class="center signin">
      <form
        aria-labelledby="signin-title"
        onSubmit={(e) => {
          e.preventDefault();
          if (user.trim()) void chat.signIn(user.trim(), demo ? undefined : token.trim());
        }}
      >
        <h2 id="signin-title">Sign in</h2>
        {demo ? (
          <p class="hint" id="signin-hint">
            Demo mode: pick a demo user
            {config.demo_users?.length ? ` (${config.demo_users.join(", ")})` : ""}. Open a second
            window as someone else to chat.
          </p>
        ) : (
          <p class="hint" id="signin-hint">
            Paste your access token (a JWT this gateway accepts).
          </p>
        )}
        <label for="signin-user">{demo ? "Demo user" : "Your name"}</label>
        <input
          id="signin-user"
          ref={first}
          name="user"
          list="demo-users"
          autocomplete="username"
          required
          aria-describedby="signin-hint"
          value={user}
          onInput={(e) => setUser((e.currentTarget as HTMLInputElement).value)}
        />
        {demo && (
          <datalist id="demo-users">
            {(config.demo_users ?? []).map((u) => (
              <option value={u} key={u} />
            ))}
          </datalist>
        )}
        {!demo && (
          <>
            <label for="signin-token">Access token</label>
            <input
              id="signin-token"
              name="token"
              type="password"
              required
              value={token}
              onInput={(e) => setToken((e.currentTarget as HTMLInputElement).value)}
            />
          </>
        )}
        <button type="submit" disabled={chat.signingIn}>
          {chat.signingIn ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}

function Dot({ status }: { status: PresenceStatus | undefined }) {
  const s = status ?? "offline";
  return (
    <span class={`dot ${s}`} title={s} data-presence={s}>
      <span class="sr-only">({s})</span>
    </span>
  );
}

function Rooms({ chat }: { chat: Chat }) {
  const list = chat.roomList;
  return (
    <nav class="rooms" aria-labelledby="rooms-title">
      <h2 id="rooms-title" tabIndex={-1}>
        Rooms
      </h2>
      {list.length === 0 ? (
        <p class="hint">No rooms yet.</p>
      ) : (
        <ul class="room-list">
          {list.map((room) => (
            <li key={room.id}>
              <button
                type="button"
                class="room-button"
                aria-current={chat.openRoomId === room.id ? "true" : undefined}
                data-room={room.id}
                onClick={() => chat.open(room.id)}
              >
                <span class="room-name">
                  {room.kind === "direct" && chat.presenceSupported && <Dot status={chat.presence.get(room.peer ?? "")} />}
                  {chat.label(room)}
                </span>
                {room.lastMessage && (
                  <span class="preview">
                    {room.lastMessage.sender === chat.me ? "You" : room.lastMessage.sender}: {room.lastMessage.text}
                  </span>
                )}
                {room.unread > 0 && (
                  <span class="badge" data-unread={room.unread}>
                    {room.unread}
                    <span class="sr-only"> unread</span>
                  </span>
                )}
              </button>
            </li>
          ))}
        </ul>
      )}
      {chat.roomsAvailable && <NewRoom chat={chat} />}
      {chat.roomsAvailable && <Direct chat={chat} />}
    </nav>
  );
}

function NewRoom({ chat }: { chat: Chat }) {
  const [name, setName] = useState("");
  const [members, setMembers] = useState("");
  const [lang, setLang] = useState("");
  const [busy, setBusy] = useState(false);
  return (
    <details class="panel">
      <summary>New room</summary>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          if (!name.trim() || busy) return;
          setBusy(true);
          const users = members.split(/[\s,]+/).filter(Boolean);
          if (await chat.createRoom(name.trim(), users, lang)) {
            setName("");
            setMembers("");
          }
          setBusy(false);
        }}
      >
        <label for="new-room-name">Room name</label>
        <input id="new-room-name" required maxLength={100} value={name} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />
        <label for="new-room-members">Members (comma separated)</label>
        <input
          id="new-room-members"
          list="demo-users"
          value={members}
          onInput={(e) => setMembers((e.currentTarget as HTMLInputElement).value)}
        />
        <label for="new-room-lang">Room language</label>
        <select id="new-room-lang" value={lang} onChange={(e) => setLang((e.currentTarget as HTMLSelectElement).value)}>
          {LANGUAGES.map(([code, label]) => (
            <option value={code} key={code}>
              {label}
            </option>
          ))}
        </select>
        <button type="submit" disabled={busy}>
          Create room
        </button>
      </form>
    </details>
  );
}

function Direct({ chat }: { chat: Chat }) {
  const [user, setUser] = useState("");
  return (
    <form
      class="panel direct"
      onSubmit={async (e) => {
        e.preventDefault();
        if (user.trim() && (await chat.openDirect(user.trim()))) setUser("");
      }}
    >
      <label for="direct-user">Chat one-to-one with</label>
      <div class="row">
        <input id="direct-user" list="demo-users" value={user} onInput={(e) => setUser((e.currentTarget as HTMLInputElement).value)} />
        <button type="submit">Open</button>
      </div>
    </form>
  );
}

function RoomView({ chat, room }: { chat: Chat; room: Room }) {
  const label = chat.label(room);
  const typists = [...room.typing.keys()].sort();
  return (
    <main class="room" aria-labelledby="room-title">
      <div class="room-head">
        <button type="button" class="back small" onClick={() => chat.open(null)}>
          ‹ Rooms
        </button>
        <h2 id="room-title">{label}</h2>
        {room.lang && <span class="tag">language: {room.lang}</span>}
      </div>
      <Members chat={chat} room={room} />
      <Log chat={chat} room={room} label={label} />
      <p class="typing" aria-live="polite">
        {typists.length > 0 && `${typists.join(", ")} ${typists.length > 1 ? "are" : "is"} typing…`}
      </p>
      <Composer chat={chat} room={room} label={label} />
    </main>
  );
}

function Members({ chat, room }: { chat: Chat; room: Room }) {
  if (!room.members) return null;
  return (
    <section class="members" aria-label="Members">
      <ul>
        {room.members.map((m) => (
          <li key={m.user} data-member={m.user}>
            {chat.presenceSupported && <Dot status={m.user === chat.me ? "online" : chat.presence.get(m.user)} />}
            {m.user}
            {m.user === chat.me && <span class="muted"> (you)</span>}
            {m.role === "owner" && <span class="muted"> · owner</span>}
          </li>
        ))}
      </ul>
    </section>
  );
}

function Log({ chat, room, label }: { chat: Chat; room: Room; label: string }) {
  const box = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const before = useRef<{ height: number; top: number } | null>(null);
  const pending = [...chat.pending.values()].filter((p) => p.room === room.id);
  const seen = seenBy(room.messages, room.pointers, chat.me);
  const preferred = chat.profile?.preferred_lang ?? chat.profile?.lang;
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    if (before.current) {
      // older messages were put on top: keep what the reader looked at in place
      el.scrollTop = el.scrollHeight - before.current.height + before.current.top;
      before.current = null;
    } else if (stick.current) {
      el.scrollTop = el.scrollHeight;
    }
  });
  return (
    <div
      class="log"
      ref={box}
      onScroll={(e) => {
        const el = e.currentTarget as HTMLDivElement;
        stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
      }}
    >
      <div class="older">
        {!room.historyLoaded ? (
          <p class="muted">Loading messages…</p>
        ) : room.olderCursor === null ? (
          <p class="muted">This is the beginning of {label}.</p>
        ) : (
          <button
            type="button"
            class="small"
            disabled={room.loadingOlder}
            onClick={() => {
              const el = box.current;
              if (el) before.current = { height: el.scrollHeight, top: el.scrollTop };
              void chat.loadOlder(room.id);
            }}
          >
            {room.loadingOlder ? "Loading…" : "Load older messages"}
          </button>
        )}
      </div>
      <div role="log" aria-label={`Messages in ${label}`} aria-busy={room.loadingOlder}>
      <ol class="messages">
        {room.messages.map((m) => (
          <Message
            key={m.id}
            chat={chat}
            room={room}
            message={m}
            seenBy={seen.get(m.id)}
            preferred={preferred}
          />
        ))}
        {pending.map((p) => (
          <PendingPost key={p.clientId} chat={chat} post={p} />
        ))}
      </ol>
      </div>
    </div>
  );
}

function Message({
  chat,
  room,
  message,
  seenBy,
  preferred,
}: {
  chat: Chat;
  room: Room;
  message: ChatMessage;
  seenBy: string[] | undefined;
  preferred: string | undefined;
}) {
  const own = message.sender === chat.me;
  const translation = pickTranslation(room.translations.get(message.id), preferred);
  const translated = translation !== undefined && room.translated.has(message.id);
  const when = new Date(message.sent_at);
  return (
    <li class={own ? "msg own" : "msg other"} data-id={message.id} data-sender={message.sender}>
      <div class="meta">
        <span class="sender">{own ? "You" : message.sender}</span>{" "}
        <time dateTime={when.toISOString()} title={when.toLocaleString()}>
          {shortTime(message.sent_at)}
        </time>
      </div>
      <p class="text" lang={translated ? translation.lang : message.lang}>
        {translated ? translation.text : message.text}
      </p>
      {translation && (
        <button
          type="button"
          class="link translate"
          aria-pressed={translated}
          onClick={() => chat.toggleTranslation(room.id, message.id)}
        >
          {translated ? "Show original" : `Show translation (${translation.lang})`}
        </button>
      )}
      {seenBy && (
        <p class="seen" data-seen-by={seenBy.join(",")}>
          Seen by {seenBy.join(", ")}
        </p>
      )}
    </li>
  );
}

function PendingPost({ chat, post }: { chat: Chat; post: Pending }) {
  const failed = post.state === "failed";
  return (
    <li class={failed ? "msg own failed" : "msg own pending"} data-pending={post.state}>
      <div class="meta">
        <span class="sender">You</span> <span>{failed ? "not sent" : post.state === "queued" ? "waiting for the connection…" : "sending…"}</span>
      </div>
      <p class="text">{post.text}</p>
      {failed && (
        <p class="row">
          <button type="button" class="small" onClick={() => chat.retryPost(post.clientId, true)}>
            Try again
          </button>
          <button type="button" class="small" onClick={() => chat.retryPost(post.clientId, false)}>
            Discard
          </button>
        </p>
      )}
    </li>
  );
}

function Composer({ chat, room, label }: { chat: Chat; room: Room; label: string }) {
  const text = chat.drafts.get(room.id) ?? "";
  const [problem, setProblem] = useState<string | null>(null);
  const input = useRef<HTMLTextAreaElement>(null);
  const max = chat.config?.chat_max_text ?? 4000;
  const length = [...text].length;
  useEffect(() => input.current?.focus(), [room.id]);
  const submit = () => {
    const refused = chat.post(room.id, input.current?.value ?? text);
    setProblem(refused);
    input.current?.focus();
  };
  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      <label for="composer-text" class="sr-only">
        Message to {label}
      </label>
      <textarea
        id="composer-text"
        ref={input}
        rows={2}
        placeholder={`Message ${label}`}
        value={text}
        aria-invalid={problem ? "true" : undefined}
        aria-describedby={problem ? "composer-problem composer-help" : "composer-help"}
        onInput={(e) => {
          const value = (e.currentTarget as HTMLTextAreaElement).value;
          if (problem) setProblem(null);
          chat.typing(room.id, value);
        }}
        onBlur={() => chat.stopTyping(room.id)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            submit();
          }
        }}
      />
      <button type="submit">Send</button>
      <p id="composer-help" class={length > max ? "help error" : "help"}>
        {`${length.toLocaleString("en")} / ${max.toLocaleString("en")} characters · Enter sends, Shift+Enter adds a line`}
      </p>
      {problem && (
        <p id="composer-problem" class="problem" role="alert">
          {problem}
        </p>
      )}
    </form>
  );
}
