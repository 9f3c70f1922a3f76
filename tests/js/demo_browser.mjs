// The demo chat in a real browser: Debian's Chromium driven by Playwright (playwright-core),
// two users in two browser contexts, each on its own gateway node. Run by
// tests/browser/test_demo_chat.py, which starts the nodes and the workers.
//
// usage: node demo_browser.mjs '<json: {"a": url, "b": url, "artifacts": dir}>'
//
// Speaks JSON lines. Out (stdout):
//   {"step": name, "ok": true|false, "ms": n, "detail"?: any, "error"?: text}
//   {"screenshot": path, "what": text}
//   {"request": "stop-b" | "start-b"}      the test stops or starts node b, then answers
//   {"finished": true}
// In (stdin): {"done": "stop-b" | "start-b"} after each request.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Client } from "@stomp/stompjs";
import { chromium } from "playwright-core";
import WebSocket from "ws";

const options = JSON.parse(process.argv[2]);
const STEP_MS = options.stepTimeout ?? 15000;
/** The rooms list is read again every 5 s (web/src/chat.ts): a new room shows within that. */
const ROOMS_REFRESH_MS = 5000;
mkdirSync(options.artifacts, { recursive: true });

function emit(line) {
  process.stdout.write(JSON.stringify(line) + "\n");
}

const answers = createInterface({ input: process.stdin });
const waiting = [];
answers.on("line", (line) => {
  const next = waiting.shift();
  if (next) next(JSON.parse(line));
});

/** Asks the test to do something (stop or start node b) and waits until it has. */
function request(what) {
  return new Promise((resolve) => {
    waiting.push(resolve);
    emit({ request: what });
  });
}

let failures = 0;

/** Runs one step; a failure is reported and the scenario goes on (later steps may fail too). */
async function step(name, body) {
  const started = Date.now();
  try {
    const detail = await body();
    emit({ step: name, ok: true, ms: Date.now() - started, detail: detail ?? null });
  } catch (error) {
    failures += 1;
    const seen = [];
    for (const [who, one] of Object.entries(people)) {
      if (!one.page || one.page.isClosed()) continue;
      const slug = name.replace(/[^a-z0-9]+/gi, "-").slice(0, 40);
      const path = join(options.artifacts, `failed-${slug}-${who}.png`);
      try {
        await one.page.screenshot({ path, timeout: 5000 });
        const text = (await one.page.locator("body").innerText({ timeout: 2000 })).slice(0, 600);
        seen.push(`${who} (${one.page.url()}, screenshot ${path}): ${JSON.stringify(text)}; page errors ${JSON.stringify(one.errors)}; console errors ${JSON.stringify(one.console)}`);
      } catch (more) {
        seen.push(`${who}: no screenshot (${more})`);
      }
    }
    const stack = String(error && error.stack ? error.stack : error);
    emit({ step: name, ok: false, ms: Date.now() - started, error: `${stack}\nwhat the pages showed:\n${seen.join("\n")}` });
  }
}

/** Every page of the scenario by name, for what a failed step shows. */
const people = {};

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function shot(page, name, what) {
  const path = join(options.artifacts, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  emit({ screenshot: path, what });
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  // Playwright gives every launch a fresh, temporary --user-data-dir of its own.
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

/** A browser context: its own storage (sign-in), like a separate person's browser. */
async function person(base, viewport = { width: 1100, height: 760 }) {
  const context = await browser.newContext({ viewport, baseURL: base });
  context.setDefaultTimeout(STEP_MS);
  const page = await context.newPage();
  return watch(context, page);
}

/** Records what a page does on the wire: its WebSockets, the frames it sends, its errors. */
function watch(context, page) {
  const who = { context, page, sockets: 0, sent: [], errors: [], console: [] };
  const attach = (p) => {
    p.on("websocket", (ws) => {
      who.sockets += 1;
      ws.on("framesent", (frame) => {
        if (typeof frame.payload === "string") who.sent.push(frame.payload);
      });
    });
    p.on("pageerror", (error) => who.errors.push(String(error)));
    p.on("console", (message) => {
      if (message.type() === "error" && !message.text().includes("404")) who.console.push(message.text());
    });
  };
  attach(page);
  who.reopen = async () => {
    who.page = await context.newPage();
    attach(who.page);
    return who.page;
  };
  return who;
}

const alertText = (page) => page.locator(".alert-slot .alert");

/** Posts `texts` to a room as a demo user with STOMP.js in node (receipts awaited). */
async function postMany(base, login, roomId, texts) {
  const client = new Client({
    brokerURL: base.replace(/^http/, "ws") + "/ws",
    connectHeaders: { login, passcode: login },
    reconnectDelay: 0,
    webSocketFactory: () => new WebSocket(base.replace(/^http/, "ws") + "/ws", ["v12.stomp"]),
  });
  const connected = new Promise((resolve, reject) => {
    client.onConnect = resolve;
    client.onStompError = (frame) => reject(new Error(frame.headers.message));
  });
  client.activate();
  await connected;
  const receipts = texts.map((text, n) => {
    const receipt = `bulk-${n}`;
    const done = new Promise((resolve) => client.watchForReceipt(receipt, resolve));
    client.publish({
      destination: `/app/rooms/${roomId}/messages`,
      body: JSON.stringify({ client_id: `bulk-${Date.now()}-${n}`, text }),
      headers: { receipt },
    });
    return done;
  });
  await Promise.all(receipts);
  await client.deactivate();
}

const openRoomId = (page) => page.evaluate(() => localStorage.getItem("stompgate-demo:open-room"));

async function signIn(page, user) {
  await page.goto("/");
  await page.getByLabel("Demo user").fill(user);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator('[role="status"][data-phase="online"]').waitFor();
}

async function openRoom(page, name) {
  await page.locator(".room-button", { hasText: name }).first().click({ timeout: ROOMS_REFRESH_MS + STEP_MS });
  await page.locator("#room-title", { hasText: name }).waitFor();
}

async function say(page, text) {
  await page.locator("#composer-text").fill(text);
  await page.locator("#composer-text").press("Enter");
  await page.locator(".msg.own[data-id]", { hasText: text }).waitFor();
}

const messageFrom = (page, sender, text) =>
  page.locator(`.msg[data-sender="${sender}"][data-id]`, { hasText: text });

const room = `Project ${Math.random().toString(36).slice(2, 7)}`;
const alice = await person(options.a);
const bob = await person(options.b);
people.alice = alice;
people.bob = bob;

await step("bad demo login: one error, no WebSocket", async () => {
  const page = alice.page;
  await page.goto("/");
  await page.getByLabel("Demo user").fill("mallory");
  await page.getByRole("button", { name: "Sign in" }).click();
  await alertText(page).waitFor();
  await page.waitForTimeout(1500); // time for a retry loop to show itself, if there were one
  const alerts = await alertText(page).allTextContents();
  check(alerts.length === 1, `one error expected, got ${JSON.stringify(alerts)}`);
  check(/Sign-in refused: 'mallory' is not a demo user/.test(alerts[0]), alerts[0]);
  check(alice.sockets === 0, `no WebSocket expected before a sign-in, got ${alice.sockets}`);
  check(await page.getByLabel("Demo user").isVisible(), "the sign-in form stays");
  await shot(page, "bad-demo-login", "a sign-in as a user who is not a demo user: one error, the form kept");
  return { alert: alerts[0] };
});

await step("sign in as alice on node a and bob on node b", async () => {
  await signIn(alice.page, "alice");
  await signIn(bob.page, "bob");
  check((await alice.page.locator("[data-me]").textContent()) === "alice", "alice signed in");
  check((await bob.page.locator("[data-me]").textContent()) === "bob", "bob signed in");
  check((await alertText(alice.page).count()) === 0, "the old error is gone");
  const icon = await alice.page.evaluate(async () => {
    const link = document.querySelector('link[rel="icon"]');
    const response = await fetch(link.href);
    return { href: link.getAttribute("href"), type: response.headers.get("content-type"), status: response.status };
  });
  check(icon.status === 200 && icon.type.startsWith("image/svg+xml"), `the favicon link works: ${JSON.stringify(icon)}`);
});

await step("alice creates a room with bob; bob sees it", async () => {
  const page = alice.page;
  await page.getByText("New room").click();
  await page.getByLabel("Room name").fill(room);
  await page.getByLabel("Members (comma separated)").fill("bob");
  await page.getByLabel("Room language").selectOption("es");
  await page.getByRole("button", { name: "Create room" }).click();
  await page.locator("#room-title", { hasText: room }).waitFor();
  await openRoom(bob.page, room);
});

await step("chat both ways", async () => {
  await say(bob.page, "Hello alice, this is bob");
  await messageFrom(alice.page, "bob", "Hello alice, this is bob").waitFor();
  await say(alice.page, "Good morning, my friend. How are you today?");
  await messageFrom(bob.page, "alice", "Good morning, my friend").waitFor();
  const own = await alice.page.locator(".msg.own[data-id]").count();
  const other = await alice.page.locator(".msg.other[data-id]").count();
  check(own === 1 && other === 1, `alice sees 1 own and 1 other message, got ${own} and ${other}`);
  const time = await alice.page.locator(".msg.other time").first().getAttribute("datetime");
  check(time && !Number.isNaN(Date.parse(time)), `a message shows its time, got ${time}`);
});

await step("typing is shown to the other", async () => {
  // One change of the composer is enough: typing right after a post is told at once.
  await bob.page.locator("#composer-text").fill("I am typ");
  await alice.page.locator(".typing", { hasText: "bob is typing…" }).waitFor();
  await bob.page.locator("#composer-text").fill("");
  await alice.page.locator(".typing", { hasText: "bob is typing" }).waitFor({ state: "detached" }).catch(() => {});
  await alice.page.waitForFunction(() => !document.querySelector(".typing")?.textContent?.includes("bob"));
});

await step("seen by: alice sees bob read her message", async () => {
  const own = alice.page.locator(".msg.own[data-id]", { hasText: "Good morning" });
  await own.locator(".seen", { hasText: "Seen by bob" }).waitFor();
});

let presence = null;
await step("presence: alice sees bob online", async () => {
  const roomId = await openRoomId(alice.page);
  const ask = () =>
    alice.page.evaluate(async (id) => {
      const creds = JSON.parse(localStorage.getItem("stompgate-demo:credentials"));
      const response = await fetch(`/api/rooms/${id}/presence`, { headers: { Authorization: creds.authorization } });
      return { status: response.status, body: await response.text() };
    }, roomId);
  const first = await ask();
  presence = first.status;
  check(presence === 200, `GET /api/rooms/<room>/presence answered ${presence}, not 200`);
  try {
    await alice.page.locator('.members [data-member="bob"] [data-presence="online"]').waitFor();
  } catch (error) {
    // Say whether the gateway or the page is wrong: what the API said then and says now.
    const now = await ask();
    throw new Error(`${error.message}\nGET presence when the room opened: ${first.body}\nGET presence now: ${now.body}`);
  }
  return { status: presence };
});

await step("translation toggle", async () => {
  const original = bob.page.locator('.msg[data-sender="alice"][data-id]', { hasText: "Good morning" });
  await original.getByRole("button", { name: /Show translation/ }).waitFor({ timeout: 45000 });
  // by its id from here on: its text changes
  const message = bob.page.locator(`.msg[data-id="${await original.getAttribute("data-id")}"]`);
  const toggle = message.getByRole("button", { name: /Show translation/ });
  await toggle.click();
  const translated = await message.locator(".text").textContent();
  check(!translated.includes("Good morning"), `the translation differs from the original: ${translated}`);
  check((await message.getByRole("button", { name: "Show original" }).getAttribute("aria-pressed")) === "true", "pressed");
  await message.getByRole("button", { name: "Show original" }).click();
  await message.locator(".text", { hasText: "Good morning" }).waitFor();
  return { translated };
});

await step("unread badge on a one-to-one chat", async () => {
  await alice.page.getByLabel("Chat one-to-one with").fill("bob");
  await alice.page.getByRole("button", { name: "Open", exact: true }).click();
  await alice.page.locator("#room-title", { hasText: "bob" }).waitFor();
  await say(alice.page, "Psst, a direct message");
  const badge = bob.page.locator(".room-button", { hasText: "alice" }).locator(".badge");
  await badge.waitFor({ timeout: ROOMS_REFRESH_MS + STEP_MS });
  const count = await badge.getAttribute("data-unread");
  check(count === "1", `one unread message expected, got ${count}`);
  await shot(bob.page, "desktop-bob", "bob (node b) in the group room: own and other messages, seen by, an unread badge on the one-to-one chat");
  await openRoom(bob.page, "alice");
  await messageFrom(bob.page, "alice", "Psst").waitFor();
  await badge.waitFor({ state: "detached" });
  await openRoom(alice.page, room);
  await openRoom(bob.page, room);
  return { unread: count };
});

await step("reload: the sign-in is kept and what was missed is caught up", async () => {
  await bob.page.close();
  await say(alice.page, "While you were away 1");
  await say(alice.page, "While you were away 2");
  const page = await bob.reopen();
  await page.goto("/");
  await page.locator('[role="status"][data-phase="online"]').waitFor();
  check((await page.locator("[data-me]").textContent()) === "bob", "still signed in as bob");
  await page.locator("#room-title", { hasText: room }).waitFor();
  await messageFrom(page, "alice", "While you were away 1").waitFor();
  await messageFrom(page, "alice", "While you were away 2").waitFor();
  await messageFrom(page, "bob", "Hello alice").waitFor();
});

await step("node b restarts: bob reconnects, catches up and keeps chatting", async () => {
  const page = bob.page;
  await request("stop-b");
  await page.locator('[role="status"]:not([data-phase="online"])').waitFor();
  const during = await page.locator('[role="status"]').textContent();
  await say(alice.page, "Said while node b was down");
  await request("start-b");
  await page.locator('[role="status"][data-phase="online"]').waitFor({ timeout: 30000 });
  await messageFrom(page, "alice", "Said while node b was down").waitFor();
  check((await alertText(page).count()) === 0, `no error shown for a restart: ${await alertText(page).allTextContents()}`);
  await say(page, "Back again after the restart");
  await messageFrom(alice.page, "bob", "Back again after the restart").waitFor();
  const ids = await page.locator(".msg[data-id]").evaluateAll((els) => els.map((e) => e.dataset.id));
  check(new Set(ids).size === ids.length, "no message shown twice");
  return { status_during_restart: during };
});

await step("an over-long message is refused before sending, and kept", async () => {
  const page = alice.page;
  const posts = () => alice.sent.filter((f) => f.startsWith("SEND\n") && f.includes("/messages\n")).length;
  const before = posts();
  const long = "x".repeat(20000);
  await page.locator("#composer-text").fill(long);
  await page.locator("#composer-text").press("Enter");
  const problem = page.locator("#composer-problem");
  await problem.waitFor();
  const text = await problem.textContent();
  check(/Too long: 20,000 characters, at most 4,000/.test(text), text);
  await page.waitForTimeout(500);
  check(posts() === before, "nothing was sent");
  check((await page.locator("#composer-text").inputValue()).length === 20000, "the text is kept");
  const phase = await page.locator('[role="status"]').getAttribute("data-phase");
  const status = await page.locator('[role="status"]').textContent();
  check(phase === "online", `still connected, got ${phase}: ${status}; alerts: ${await alertText(page).allTextContents()} reads: ${JSON.stringify(alice.sent.filter((f) => f.includes("/read")))}`);
  await shot(page, "too-long", "a 20,000-character message: refused before sending, the text kept");
  await page.locator("#composer-text").fill("");
  return { problem: text };
});

await step("accessibility: labels, roles, contrast, focus order", async () => {
  const page = alice.page;
  const report = await page.evaluate(() => {
    const visible = (el) => {
      const r = el.getBoundingClientRect();
      const s = getComputedStyle(el);
      return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none";
    };
    const unlabelled = [...document.querySelectorAll("input, select, textarea, button")]
      .filter(visible)
      .filter((el) => {
        if (el.tagName === "BUTTON") return !(el.textContent.trim() || el.getAttribute("aria-label"));
        return !(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby");
      })
      .map((el) => el.outerHTML.slice(0, 120));
    const rgb = (text) => text.match(/[\d.]+/g).map(Number);
    const luminance = ([r, g, b]) => {
      const c = [r, g, b].map((v) => {
        v /= 255;
        return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    };
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.length < 4 || c[3] > 0) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const low = [];
    let checked = 0;
    for (const el of document.querySelectorAll("body *")) {
      const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      if (!own || !visible(el) || el.closest(".sr-only")) continue;
      const fg = luminance(rgb(getComputedStyle(el).color));
      const bg = luminance(background(el));
      const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
      checked += 1;
      if (ratio < 4.5) low.push(`${el.tagName}.${el.className}: ${ratio.toFixed(2)} "${el.textContent.trim().slice(0, 30)}"`);
    }
    return {
      unlabelled,
      low,
      checked,
      log: !!document.querySelector('[role="log"]'),
      alert: !!document.querySelector('[role="alert"]'),
      status: !!document.querySelector('[role="status"]'),
    };
  });
  check(report.unlabelled.length === 0, `controls without a name: ${report.unlabelled.join(" | ")}`);
  check(report.low.length === 0, `text under 4.5:1: ${report.low.join(" | ")}`);
  check(report.checked > 20, `contrast measured on ${report.checked} elements`);
  check(report.log && report.alert && report.status, "log, alert and status regions");
  // Keyboard: from the top, Tab reaches the header, then the rooms, then the composer.
  await page.locator("body").evaluate(() => document.activeElement && document.activeElement.blur());
  const order = [];
  for (let i = 0; i < 40 && !order.includes("composer-text"); i += 1) {
    await page.keyboard.press("Tab");
    order.push(await page.evaluate(() => {
      const el = document.activeElement;
      return el.id || (el.classList.contains("room-button") ? "room" : el.textContent.trim().slice(0, 20));
    }));
  }
  const signOut = order.indexOf("Sign out");
  const firstRoom = order.indexOf("room");
  const composer = order.indexOf("composer-text");
  check(signOut >= 0 && firstRoom > signOut && composer > firstRoom, `focus order: ${order.join(" > ")}`);
  // and Enter on a focused room button opens it
  await page.locator(".room-button", { hasText: room }).focus();
  await page.keyboard.press("Enter");
  await page.locator("#room-title", { hasText: room }).waitFor();
  return { contrast_checked: report.checked, focus_order: order };
});

await step("screenshots of both users", async () => {
  await shot(alice.page, "desktop-alice", "alice (node a) in the group room after the restart of node b");
  await shot(bob.page, "desktop-bob-after-restart", "bob (node b) after its node restarted: caught up, chatting again");
});

let phone = null;
await step("older messages load on demand (history API, keyset)", async () => {
  const roomId = await openRoomId(alice.page);
  const bulk = Array.from({ length: 55 }, (_, n) => `Bulk message ${n}`);
  await postMany(options.a, "alice", roomId, bulk);
  await messageFrom(alice.page, "alice", "Bulk message 54").waitFor();
  phone = await person(options.a, { width: 390, height: 844 });
  people.phone = phone;
  await signIn(phone.page, "bob");
  const page = phone.page;
  await page.locator(".room-button").nth(1).waitFor(); // the rooms list shows first
  check(await page.locator(".rooms").isVisible(), "the rooms list is what shows");
  await shot(page, "mobile-390-rooms", "390 px wide: the rooms list");
  await openRoom(page, room);
  await messageFrom(page, "alice", "Bulk message 54").waitFor();
  const first = await page.locator(".msg[data-id]").count();
  check(first === 50, `a first page of 50 messages, got ${first}`);
  check((await messageFrom(page, "bob", "Hello alice").count()) === 0, "the oldest are not loaded yet");
  await page.getByRole("button", { name: "Load older messages" }).click();
  await messageFrom(page, "bob", "Hello alice, this is bob").waitFor();
  await page.getByText(/This is the beginning of/).waitFor();
  const all = await page.locator(".msg[data-id]").count();
  return { first_page: first, all };
});

await step("390 px wide: usable, nothing runs off the screen", async () => {
  check(phone !== null, "signed in on a phone-sized page");
  const page = phone.page;
  await page.locator(".log").evaluate((el) => el.scrollTo(0, el.scrollHeight));
  const layout = await page.evaluate(() => {
    const send = document.querySelector(".composer button[type=submit]").getBoundingClientRect();
    const back = document.querySelector(".back").getBoundingClientRect();
    return { scrollWidth: document.documentElement.scrollWidth, sendRight: send.right, backVisible: back.width > 0 };
  });
  check(layout.scrollWidth <= 390, `no horizontal scrolling (${layout.scrollWidth} px)`);
  check(layout.sendRight <= 390, `the send button is on screen (right edge ${layout.sendRight})`);
  check(layout.backVisible, "a way back to the rooms");
  await shot(page, "mobile-390", "390 px wide: a room with its messages, the composer and the send button on screen");
  return layout;
});

await step("a refused STOMP login: one error, no retry loop, back to the sign-in form", async () => {
  const stale = await person(options.b);
  const page = stale.page;
  await page.goto("/");
  await page.evaluate(() => {
    const wrong = { user: "bob", login: "bob", passcode: "not-bobs", authorization: "Basic Ym9iOm5vdC1ib2Jz" };
    localStorage.setItem("stompgate-demo:credentials", JSON.stringify(wrong));
  });
  await page.reload();
  await alertText(page).waitFor();
  await page.waitForTimeout(3000); // a retry loop would open more sockets and stack errors
  const alerts = await alertText(page).allTextContents();
  check(alerts.length === 1, `one error expected, got ${JSON.stringify(alerts)}`);
  check(/Sign-in refused/.test(alerts[0]), alerts[0]);
  check(stale.sockets <= 1, `one WebSocket at most, got ${stale.sockets}`);
  check(await page.getByLabel("Demo user").isVisible(), "back to the sign-in form");
  check((await page.evaluate(() => localStorage.getItem("stompgate-demo:credentials"))) === null, "forgotten");
  await shot(page, "bad-stomp-login", "remembered credentials the gateway refuses: one error, no retry, the sign-in form");
  await stale.context.close();
  return { alert: alerts[0], sockets: stale.sockets };
});

await step("bob is removed from the room: one error, the room closes, the chat goes on", async () => {
  const roomId = await openRoomId(alice.page);
  const sockets = bob.sockets;
  const status = await alice.page.evaluate(async (id) => {
    const creds = JSON.parse(localStorage.getItem("stompgate-demo:credentials"));
    const response = await fetch(`/api/rooms/${id}/members/bob`, {
      method: "DELETE",
      headers: { Authorization: creds.authorization },
    });
    return response.status;
  }, roomId);
  check(status === 204, `alice (the owner) removes bob: ${status}`);
  const page = bob.page;
  await alertText(page).waitFor();
  await page.locator('[role="status"][data-phase="online"]').waitFor();
  await page.waitForTimeout(2000); // a retry loop would resubscribe and be refused again
  const alerts = await alertText(page).allTextContents();
  check(alerts.length === 1 && /^Room “Project \w+” is closed: (alice removed you|you were removed) from it/.test(alerts[0]), JSON.stringify(alerts));
  check((await page.locator(".room-button", { hasText: room }).count()) === 0, "the room left the list");
  // The member-left event or the ERROR says it first; after an ERROR the page reconnects once.
  check(bob.sockets - sockets <= 1, `one reconnect at most, got ${bob.sockets - sockets}`);
  await shot(page, "removed-from-room", "bob removed from the room by its owner: one error, the room gone, still connected");
  await openRoom(page, "alice");
  await say(page, "Still here in our one-to-one chat");
  return { alert: alerts[0] };
});

await step("no script errors in the pages", async () => {
  const errors = [...alice.errors, ...bob.errors, ...(phone ? phone.errors : [])];
  check(errors.length === 0, errors.join("\n"));
});

await browser.close();
emit({ finished: true, failures });
answers.close();
process.exit(0);
