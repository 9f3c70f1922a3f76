// The real STOMP.js client (@stomp/stompjs 7) over the `ws` package, driven by pytest.
//
// usage: node stompjs_client.mjs <scenario> <ws-url> [json options]
// Prints one JSON object with what happened, then exits 0; exits 1 with {"error": ...}.
import { Client } from "@stomp/stompjs";
import WebSocket from "ws";

Object.assign(globalThis, { WebSocket });

const [scenario, url, rawOptions] = process.argv.slice(2);
const options = rawOptions ? JSON.parse(rawOptions) : {};
const deadline = setTimeout(() => fail(`scenario ${scenario} timed out`), options.timeout ?? 20000);

function finish(result) {
  clearTimeout(deadline);
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(0);
}

function fail(message) {
  process.stdout.write(JSON.stringify({ error: String(message) }) + "\n");
  process.exit(1);
}

function makeClient(extra = {}) {
  return new Client({
    brokerURL: url,
    connectHeaders: { login: options.login ?? "guest", passcode: options.passcode ?? "guest" },
    reconnectDelay: 0,
    heartbeatIncoming: options.heartbeatIncoming ?? 0,
    heartbeatOutgoing: options.heartbeatOutgoing ?? 0,
    onStompError: (frame) => fail(`STOMP ERROR: ${frame.headers.message}`),
    onWebSocketError: () => {},
    ...extra,
  });
}

function waitReceipt(client, receiptId) {
  return new Promise((resolve) => client.watchForReceipt(receiptId, resolve));
}

const scenarios = {
  // connect, subscribe (receipt), publish (receipt), receive own messages in order
  async roundtrip() {
    const destination = options.destination ?? "/topic/room.js";
    const count = options.count ?? 5;
    const client = makeClient();
    const received = [];
    const connected = new Promise((resolve) => (client.onConnect = resolve));
    client.activate();
    const frame = await connected;
    const done = new Promise((resolve) => {
      client.subscribe(
        destination,
        (message) => {
          received.push({ body: message.body, headers: message.headers });
          if (received.length === count) resolve();
        },
        { id: "sub-0", receipt: "sub-receipt" },
      );
    });
    await waitReceipt(client, "sub-receipt");
    const receipts = [];
    for (let i = 0; i < count; i++) {
      const receipt = `send-${i}`;
      const got = waitReceipt(client, receipt).then(() => receipts.push(receipt));
      client.publish({ destination, body: `hello ${i}`, headers: { receipt, "x-n": String(i) } });
      await got;
    }
    await done;
    await client.deactivate();
    finish({ connected: frame.headers, received, receipts });
  },

  // negotiate heart-beats and stay connected across several intervals
  async heartbeat() {
    const client = makeClient({ heartbeatIncoming: 500, heartbeatOutgoing: 500 });
    let closes = 0;
    client.onWebSocketClose = () => closes++;
    const connected = new Promise((resolve) => (client.onConnect = resolve));
    client.activate();
    const frame = await connected;
    await new Promise((resolve) => setTimeout(resolve, options.hold ?? 3000));
    const stillConnected = client.connected;
    const closesWhileHeld = closes;
    await client.deactivate();
    finish({ heartBeat: frame.headers["heart-beat"], stillConnected, closes: closesWhileHeld });
  },

  // 1 s heart-beats both ways (14.5): count the server's pings for a while, then stop
  // writing to the socket (as a frozen tab would) and see how soon the server cuts us
  async heartbeatSilent() {
    let pongs = 0;
    const client = makeClient({
      heartbeatIncoming: 1000,
      heartbeatOutgoing: 1000,
      debug: (line) => {
        if (line === "<<< PONG") pongs++;
      },
    });
    let cut;
    const ended = new Promise((resolve) => (cut = resolve));
    client.onStompError = (frame) => cut({ message: frame.headers.message, body: frame.body });
    client.onWebSocketClose = () => cut({ message: null });
    const connected = new Promise((resolve) => (client.onConnect = resolve));
    client.activate();
    const frame = await connected;
    await new Promise((resolve) => setTimeout(resolve, options.hold ?? 4000));
    const pongsWhileHeld = pongs;
    const stillConnected = client.connected;
    client.webSocket.send = () => {}; // no more pings, no more frames
    const mutedAt = Date.now();
    const error = await ended;
    finish({
      heartBeat: frame.headers["heart-beat"],
      pongs: pongsWhileHeld,
      stillConnected,
      error,
      cutAfterMs: Date.now() - mutedAt,
    });
  },

  // the server drops the socket; STOMP.js reconnects by itself and resubscribes
  async reconnect() {
    const destination = options.destination ?? "/topic/room.reconnect";
    const client = makeClient({ reconnectDelay: 200 });
    let connects = 0;
    const bodies = [];
    let resolveSecond;
    const second = new Promise((resolve) => (resolveSecond = resolve));
    let resolveMessage;
    const message = new Promise((resolve) => (resolveMessage = resolve));
    client.onStompError = () => {}; // the server's ERROR before it drops us is expected
    client.onConnect = () => {
      connects++;
      client.subscribe(destination, (m) => {
        bodies.push(m.body);
        resolveMessage();
      }, { id: `sub-${connects}`, receipt: `r-${connects}` });
      if (connects === 1) {
        // ask the test to kill our session: it watches stdout for this line
        process.stdout.write(JSON.stringify({ ready: true }) + "\n");
      } else {
        client.watchForReceipt(`r-${connects}`, () => resolveSecond());
      }
    };
    client.activate();
    await second;
    client.publish({ destination, body: "after reconnect" });
    await message;
    await client.deactivate();
    finish({ connects, bodies });
  },

  // an ERROR as STOMP.js hands it to onStompError: short message, body, our reason (14.8)
  async error() {
    const client = makeClient({
      onStompError: (frame) => finish({ headers: frame.headers, body: frame.body }),
    });
    client.onConnect = () => client.subscribe(options.destination, () => {}, { id: "bad" });
    client.activate();
  },

  // no credentials (14.7), then a transaction: nothing before COMMIT, its receipts after (14.3)
  async anonymousTransaction() {
    const destination = options.destination;
    const client = makeClient({ connectHeaders: {} });
    const connected = new Promise((resolve) => (client.onConnect = resolve));
    client.activate();
    const frame = await connected;
    const received = [];
    const both = new Promise((resolve) => {
      client.subscribe(destination, (m) => {
        received.push(m.body);
        if (received.length === 2) resolve();
      }, { id: "s", receipt: "sub" });
    });
    await waitReceipt(client, "sub");
    const receipts = [];
    const sendReceipt = waitReceipt(client, "r1").then(() => receipts.push("r1"));
    const tx = client.begin("t1");
    client.publish({ destination, body: "one", headers: { transaction: tx.id, receipt: "r1" } });
    client.publish({ destination, body: "two", headers: { transaction: tx.id } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const beforeCommit = { received: received.length, receipts: receipts.length };
    tx.commit();
    await Promise.all([sendReceipt, both]);
    await client.deactivate();
    finish({ connected: frame.headers, beforeCommit, received, receipts });
  },
};

if (!scenarios[scenario]) fail(`unknown scenario ${scenario}`);
scenarios[scenario]().catch(fail);
