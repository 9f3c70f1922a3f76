// Load generator for benchmarks/bench_gateway.py: STOMP 1.2 over WebSocket, one Node process.
//
// Driven over stdin/stdout, one JSON object per line. argv[2] is the JSON config:
//   {url, vhost, login, passcode, rooms, subs, pubs, rate, bodySize, idle, concurrency, mode,
//    window, inflight, heartbeat, receiptEvery}
//   receiptEvery: mode "max" sends batches of this many SENDs, the last with a receipt (10).
//   heartbeat: ms, both ways, in CONNECT's heart-beat header (0 or absent: none); every
//   connected client then sends an EOL every `heartbeat` ms (the server's are ignored).
//   rate: messages/s per publisher (mode "fixed"); mode "max": as fast as receipts allow.
// Commands (stdin):   setup | start | mark | report | stop | close
// Replies (stdout):   {"event": "ready"|"started"|"marked"|"report"|"stopped"|"closed", ...}
//
// Latency: the publisher puts `t=<performance.now() ms>;` at the start of the body; the
// subscriber (same process, same clock) subtracts it from its receive time. Latencies go
// into a log histogram with 0.5 % wide buckets, so percentiles are within 0.5 %.
"use strict";

const path = require("node:path");
const readline = require("node:readline");
const { performance } = require("node:perf_hooks");
const WebSocket = require(path.join(__dirname, "..", "tests", "js", "node_modules", "ws"));

const cfg = JSON.parse(process.argv[2]);
const NUL = 0;

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// -- latency histogram -------------------------------------------------------------------------
const BUCKETS_PER_E = 200; // bucket width ~0.5 %
const hist = new Float64Array(BUCKETS_PER_E * 25); // up to e^25 us
let histCount = 0;
let delivered = 0;
let published = 0;
let errors = 0;
let lastError = "";
let markTime = performance.now();

function record(latencyMs) {
  const us = latencyMs * 1000;
  let b = us <= 1 ? 0 : Math.floor(Math.log(us) * BUCKETS_PER_E);
  if (b >= hist.length) b = hist.length - 1;
  hist[b] += 1;
  histCount += 1;
}

function percentile(p) {
  if (histCount === 0) return null;
  const want = Math.ceil(histCount * p);
  let seen = 0;
  for (let b = 0; b < hist.length; b++) {
    seen += hist[b];
    if (seen >= want) return Math.exp((b + 0.5) / BUCKETS_PER_E) / 1000; // ms
  }
  return null;
}

// -- frames ------------------------------------------------------------------------------------
const HEARTBEAT = cfg.heartbeat || 0;

function connectFrame() {
  return (
    "CONNECT\naccept-version:1.2\n" +
    `host:${cfg.vhost}\nlogin:${cfg.login}\npasscode:${cfg.passcode}\n` +
    `heart-beat:${HEARTBEAT},${HEARTBEAT}\n\n\0`
  );
}

const PAD = "x".repeat(Math.max(cfg.bodySize || 256, 32));

function sendFrame(room, receipt) {
  let body = `t=${performance.now().toFixed(3)};`;
  body += PAD.slice(0, Math.max(0, (cfg.bodySize || 256) - body.length));
  return (
    `SEND\ndestination:/topic/room.${room}\ncontent-type:text/plain\n` +
    `content-length:${body.length}\n` +
    (receipt ? `receipt:${receipt}\n` : "") +
    `\n${body}\0`
  );
}

// -- one client --------------------------------------------------------------------------------
class Client {
  constructor(kind, room) {
    this.kind = kind; // "sub" | "pub" | "idle"
    this.room = room;
    this.ws = null;
    this.connected = false;
    this.sent = 0;
    this.outstanding = 0; // receipts not yet back (max mode)
    this.receiptSeq = 0;
    this.phase = Math.random();
    this.onReady = null;
    this.failed = null;
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(cfg.url, ["v12.stomp"], {
        perMessageDeflate: false,
        handshakeTimeout: 30000,
      });
      this.ws = ws;
      let settled = false;
      const done = (err) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve(this);
      };
      this.onReady = () => done(null);
      ws.on("open", () => ws.send(connectFrame()));
      ws.on("message", (data) => this.onData(data, done));
      ws.on("error", (err) => {
        this.failed = String(err);
        done(err);
      });
      ws.on("close", (code) => {
        if (!settled) done(new Error(`closed during setup: ${code}`));
        else if (!closing) {
          errors += 1;
          if (!lastError.startsWith("ERROR")) lastError = `closed by server: ${code}`;
        }
      });
    });
  }

  onData(data, done) {
    // data: a Buffer with one or more STOMP frames (or heart-beat EOLs).
    let start = 0;
    const len = data.length;
    while (start < len) {
      while (start < len && (data[start] === 10 || data[start] === 13)) start++;
      if (start >= len) break;
      let end = data.indexOf(NUL, start);
      if (end < 0) end = len;
      this.onFrame(data, start, end, done);
      start = end + 1;
    }
  }

  onFrame(data, start, end, done) {
    // command: bytes up to the first LF
    const c0 = data[start];
    if (c0 === 77 /* M */) {
      // MESSAGE: find the blank line, then "t=<ms>;"
      const now = performance.now();
      const sep = data.indexOf("\n\n", start);
      if (sep < 0 || sep > end) return;
      const b = sep + 2;
      if (data[b] === 116 /* t */ && data[b + 1] === 61 /* = */) {
        const semi = data.indexOf(59 /* ; */, b);
        const t = Number(data.toString("latin1", b + 2, semi));
        delivered += 1;
        record(now - t);
      }
      return;
    }
    const nl = data.indexOf(10, start);
    const command = data.toString("latin1", start, nl < 0 || nl > end ? end : nl);
    if (command === "CONNECTED") {
      this.connected = true;
      if (this.kind === "sub") {
        this.ws.send(
          `SUBSCRIBE\nid:0\ndestination:/topic/room.${this.room}\nack:auto\nreceipt:sub\n\n\0`,
        );
      } else {
        this.onReady();
      }
    } else if (command === "RECEIPT") {
      const text = data.toString("latin1", start, end);
      if (text.includes("receipt-id:sub")) {
        this.onReady();
      } else {
        this.outstanding -= 1;
      }
    } else if (command === "ERROR") {
      errors += 1;
      lastError = data.toString("latin1", start, Math.min(end, start + 300));
      done(new Error(lastError));
    }
  }
}

let closing = false;
const clients = [];
const publishers = [];

// Heart-beats: the clients spread over the interval, a slice every 50 ms.
if (HEARTBEAT) {
  const slots = Math.max(1, Math.round(HEARTBEAT / 50));
  let slot = 0;
  setInterval(() => {
    slot = (slot + 1) % slots;
    for (let i = slot; i < clients.length; i += slots) {
      if (clients[i].connected && clients[i].ws.readyState === WebSocket.OPEN) clients[i].ws.send("\n");
    }
  }, 50);
}

async function openAll(specs) {
  const conc = cfg.concurrency || 100;
  let next = 0;
  let failed = 0;
  let firstError = "";
  async function worker() {
    while (next < specs.length) {
      const [kind, room] = specs[next++];
      const c = new Client(kind, room);
      try {
        await c.open();
        clients.push(c);
        if (kind === "pub") publishers.push(c);
      } catch (err) {
        failed += 1;
        if (!firstError) firstError = String(err);
      }
    }
  }
  await Promise.all(Array.from({ length: conc }, worker));
  return { failed, firstError };
}

// -- publishing --------------------------------------------------------------------------------
let pubTimer = null;
let pubStart = 0;
const TICK_MS = 2;
const RECEIPT_EVERY = Math.max(1, cfg.receiptEvery || 10);

function tickFixed() {
  const elapsed = (performance.now() - pubStart) / 1000;
  for (const p of publishers) {
    const due = Math.floor(elapsed * cfg.rate + p.phase);
    while (p.sent < due) {
      p.ws.send(sendFrame(p.room, null));
      p.sent += 1;
      published += 1;
    }
  }
}

function tickMax() {
  const window = cfg.inflight || 5;
  for (const p of publishers) {
    while (p.outstanding < window && p.ws.bufferedAmount < 65536) {
      // a batch of RECEIPT_EVERY sends, the last one with a receipt
      for (let i = 1; i <= RECEIPT_EVERY; i++) {
        const receipt = i === RECEIPT_EVERY ? `r${++p.receiptSeq}` : null;
        p.ws.send(sendFrame(p.room, receipt));
        published += 1;
      }
      p.outstanding += 1;
    }
  }
}

// -- commands ----------------------------------------------------------------------------------
async function handle(cmd) {
  if (cmd === "setup") {
    const t0 = performance.now();
    const specs = [];
    if (cfg.idle) {
      for (let i = 0; i < cfg.idle; i++) specs.push(["idle", 0]);
    } else {
      // subscribers first, so nothing published is lost
      for (let s = 0; s < cfg.subs; s++) for (let r = 0; r < cfg.rooms; r++) specs.push(["sub", r]);
    }
    const a = await openAll(specs);
    const pubSpecs = [];
    if (!cfg.idle) {
      for (let s = 0; s < cfg.pubs; s++) for (let r = 0; r < cfg.rooms; r++) pubSpecs.push(["pub", r]);
    }
    const b = await openAll(pubSpecs);
    out({
      event: "ready",
      opened: clients.length,
      failed: a.failed + b.failed,
      firstError: a.firstError || b.firstError,
      seconds: (performance.now() - t0) / 1000,
    });
  } else if (cmd === "start") {
    pubStart = performance.now();
    pubTimer = setInterval(cfg.mode === "max" ? tickMax : tickFixed, TICK_MS);
    out({ event: "started" });
  } else if (cmd === "mark") {
    hist.fill(0);
    histCount = 0;
    delivered = 0;
    published = 0;
    markTime = performance.now();
    out({ event: "marked" });
  } else if (cmd === "report") {
    const seconds = (performance.now() - markTime) / 1000;
    out({
      event: "report",
      seconds,
      delivered,
      published,
      errors,
      lastError,
      p50: percentile(0.5),
      p90: percentile(0.9),
      p99: percentile(0.99),
      p999: percentile(0.999),
      max: percentile(1.0),
    });
  } else if (cmd === "stop") {
    if (pubTimer) clearInterval(pubTimer);
    pubTimer = null;
    out({ event: "stopped" });
  } else if (cmd === "close") {
    closing = true;
    if (pubTimer) clearInterval(pubTimer);
    for (const c of clients) {
      try {
        c.ws.terminate();
      } catch (_) {
        /* already gone */
      }
    }
    out({ event: "closed" });
    setTimeout(() => process.exit(0), 50);
  }
}

const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on("line", (line) => {
  const cmd = line.trim();
  if (cmd) chain = chain.then(() => handle(cmd)).catch((err) => out({ event: "fatal", error: String(err) }));
});
rl.on("close", () => chain.then(() => process.exit(0)));
