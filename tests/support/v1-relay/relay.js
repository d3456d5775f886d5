#!/usr/bin/env node
// In nexscope's tests (tests/support/v1-relay, installed into target/v1-relay by
// scripts/test): the v1 relay our daemons must keep working with (interop checks).
// nexscope v1 reference relay for benchmarks: a minimal implementation of the v1 relay wire
// protocol (spec/nexscope-v1.md §1) on the original's stack, Node + ws.
//
// Not part of nexscope. It exists so that nexscope's relay can be measured side by side with the
// stack the original used. It is rebuilt from the spec.
//
// Run:   NEXSCOPE_TOKEN=secret PORT=8080 node relay.js
// Env:   NEXSCOPE_TOKEN (required), PORT (8080), HOST (127.0.0.1),
//        NEXSCOPE_MAX_PAYLOAD (10485760), NEXSCOPE_MAX_FILE (104857600), NEXSCOPE_MAX_USERS (50),
//        NEXSCOPE_LOG_FORWARDS=1 to log one line per forwarded frame (PRD NFR-4; off by default so
//        benchmarks do not measure log I/O),
//        anchor-only test knobs: NEXSCOPE_HEARTBEAT_MS (30000), NEXSCOPE_TRANSFER_TIMEOUT_MS (60000).
//
// Where v1 is silent or self-contradictory, the choice made here is marked [CHOICE]:
//   - file-end is exempt from the `to` check, and from the `from` check when `from` is absent
//     (the reference client sends only {type,msgId,from}); ping is exempt from both.
//   - the three "counted" codes (missing_from, from_mismatch, missing_to) get an error frame and
//     count toward 10 accumulated illegal frames per connection -> close 4013. bad_json and
//     unknown_type get an error frame and are not counted (PROTOCOL §7.1 table).
//   - a binary frame outside the sender's own transfer is dropped with error `unexpected_binary`
//     and counted as illegal.
//   - room full (NEXSCOPE_MAX_USERS): error `room_full`, close 4015 (v1 leaves it unspecified;
//     this is the project's DESIGN.md choice).
//   - file-start over NEXSCOPE_MAX_FILE or without a usable `attachment` is refused with error
//     `file_too_large` / `bad_file_start`; the lock is not taken.
//   - a sender that disconnects mid-transfer is treated like the 60 s timeout: lock released,
//     `transfer_incomplete` to every recipient that got the file-start.
//   - heartbeat timeout: a close frame 4010 is written, then the socket is terminated at once
//     (the spec says terminate(); the close frame goes out only if the socket can still take it).
//   - over maxPayload: error frame `msg_too_large`, then close 4011 (ws would otherwise use 1009).
//   - no backpressure handling: like a minimal ws relay, slow readers are buffered in memory.

import http from 'node:http';
import crypto from 'node:crypto';
import { WebSocketServer, WebSocket } from 'ws';

const env = process.env;
const intEnv = (k, d) => {
  const v = env[k];
  if (v == null || v === '') return d;
  const n = Number.parseInt(v, 10);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`relay: ${k} must be a non-negative integer, got "${v}"`);
    process.exit(2);
  }
  return n;
};

const TOKEN = env.NEXSCOPE_TOKEN;
if (!TOKEN) {
  console.error('relay: NEXSCOPE_TOKEN is required (the shared secret every client must present)');
  process.exit(2);
}
const PORT = intEnv('PORT', 8080);
const HOST = env.HOST || '127.0.0.1';
const MAX_PAYLOAD = intEnv('NEXSCOPE_MAX_PAYLOAD', 10 * 1024 * 1024);
const MAX_FILE = intEnv('NEXSCOPE_MAX_FILE', 100 * 1024 * 1024);
const MAX_USERS = intEnv('NEXSCOPE_MAX_USERS', 50);
const HEARTBEAT_MS = intEnv('NEXSCOPE_HEARTBEAT_MS', 30_000);
const TRANSFER_TIMEOUT_MS = intEnv('NEXSCOPE_TRANSFER_TIMEOUT_MS', 60_000);
const LOG_FORWARDS = env.NEXSCOPE_LOG_FORWARDS === '1';

const SUPPORTED_VERSIONS = new Set([1]);
const NAME_RE = /^[a-zA-Z0-9_-]{1,32}$/;
const ILLEGAL_LIMIT = 10;
const RETRY_AFTER_MS = 2000;

// ------------------------------------------------------------------ logging

function log(event, fields = {}) {
  // One line per event. Never the token, never message text.
  process.stdout.write(JSON.stringify({ ts: Date.now(), event, ...fields }) + '\n');
}

// ------------------------------------------------------------------ room state (one room in v1)

/** name -> { ws, name, illegal, missedPongs } */
const members = new Map();
/** the per-room transfer lock: null or { sender, msgId, threadId, to, recipients:Set, offline, timer } */
let transfer = null;

const TOKEN_DIGEST = crypto.createHash('sha256').update(TOKEN).digest();
function tokenOk(t) {
  if (typeof t !== 'string' || t === '') return false;
  const d = crypto.createHash('sha256').update(t).digest();
  return crypto.timingSafeEqual(d, TOKEN_DIGEST);
}

function sendJson(ws, obj) {
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
}

function sendError(ws, code, extra = {}) {
  sendJson(ws, { type: 'error', code, ...extra });
}

function broadcastPresence() {
  const users = [...members.keys()].sort();
  const frame = JSON.stringify({ type: 'presence', users, ts: Date.now() });
  for (const m of members.values()) {
    if (m.ws.readyState === WebSocket.OPEN) m.ws.send(frame);
  }
}

/** Online recipients and offline names for a `to` list; [] means every other member. */
function resolveTargets(sender, to) {
  const delivered = [];
  const offline = [];
  if (to.length === 0) {
    for (const name of members.keys()) if (name !== sender) delivered.push(name);
  } else {
    const seen = new Set();
    for (const name of to) {
      if (typeof name !== 'string' || seen.has(name)) continue;
      seen.add(name);
      if (members.has(name)) delivered.push(name);
      else offline.push(name);
    }
  }
  return { delivered, offline };
}

function illegal(m, code) {
  m.illegal += 1;
  sendError(m.ws, code);
  log('illegal_frame', { name: m.name, code, count: m.illegal });
  if (m.illegal >= ILLEGAL_LIMIT) {
    log('close', { name: m.name, code: 4013, reason: 'too_many_illegal_frames' });
    m.ws.close(4013, 'too_many_illegal_frames');
  }
}

// ------------------------------------------------------------------ file transfer lock

function abortTransfer(reason) {
  const t = transfer;
  if (!t) return;
  transfer = null;
  clearTimeout(t.timer);
  log('transfer_aborted', { from: t.sender.name, msgId: t.msgId, reason });
  for (const name of t.recipients) {
    const r = members.get(name);
    if (r) sendError(r.ws, 'transfer_incomplete', { msgId: t.msgId });
  }
}

function onFileStart(m, frame) {
  if (transfer) {
    sendError(m.ws, 'transfer_busy', { retryAfterMs: RETRY_AFTER_MS });
    return;
  }
  const att = frame.attachment;
  if (!att || typeof att !== 'object' || !Number.isSafeInteger(att.size) || att.size < 0) {
    sendError(m.ws, 'bad_file_start', { message: 'file-start needs attachment.size (a non-negative integer)' });
    return;
  }
  if (att.size > MAX_FILE) {
    sendError(m.ws, 'file_too_large', { message: `attachment.size exceeds ${MAX_FILE} bytes` });
    return;
  }
  const { delivered, offline } = resolveTargets(m.name, frame.to);
  const out = JSON.stringify({ ...frame, ts: Date.now() });
  const recipients = new Set();
  for (const name of delivered) {
    const r = members.get(name);
    if (r && r.ws.readyState === WebSocket.OPEN) { r.ws.send(out); recipients.add(name); }
  }
  transfer = {
    sender: m, msgId: frame.msgId, threadId: frame.threadId, to: frame.to,
    recipients, offline, bytes: 0,
    timer: setTimeout(() => {
      const t = transfer;
      if (!t || t.sender !== m) return;
      abortTransfer('timeout');
      log('close', { name: m.name, code: 4014, reason: 'transfer_timeout' });
      m.ws.close(4014, 'transfer_timeout');
    }, TRANSFER_TIMEOUT_MS),
  };
  if (LOG_FORWARDS) log('forward', { type: 'file-start', from: m.name, msgId: frame.msgId, to: [...recipients] });
}

function onBinary(m, data) {
  const t = transfer;
  if (!t || t.sender !== m) { illegal(m, 'unexpected_binary'); return; }
  t.bytes += data.length;
  for (const name of t.recipients) {
    const r = members.get(name);
    if (r && r.ws.readyState === WebSocket.OPEN) r.ws.send(data, { binary: true });
  }
}

function onFileEnd(m, frame) {
  const t = transfer;
  if (!t || t.sender !== m || frame.msgId !== t.msgId) {
    sendError(m.ws, 'bad_file_end', { msgId: frame.msgId });
    return;
  }
  transfer = null;
  clearTimeout(t.timer);
  const out = JSON.stringify({ ...frame, ts: Date.now() });
  const delivered = [];
  const offline = [...t.offline];
  for (const name of t.recipients) {
    const r = members.get(name);
    if (r && r.ws.readyState === WebSocket.OPEN) { r.ws.send(out); delivered.push(name); }
    else if (t.to.length) offline.push(name);
  }
  sendJson(m.ws, { type: 'ack', msgId: t.msgId, threadId: t.threadId, delivered, offline });
  if (LOG_FORWARDS) log('forward', { type: 'file-end', from: m.name, msgId: t.msgId, bytes: t.bytes, to: delivered });
}

// ------------------------------------------------------------------ msg

function onMsg(m, frame) {
  const { delivered, offline } = resolveTargets(m.name, frame.to);
  const out = JSON.stringify({ ...frame, ts: Date.now() });
  const got = [];
  for (const name of delivered) {
    const r = members.get(name);
    if (r && r.ws.readyState === WebSocket.OPEN) { r.ws.send(out); got.push(name); }
  }
  sendJson(m.ws, { type: 'ack', msgId: frame.msgId, threadId: frame.threadId, delivered: got, offline });
  if (LOG_FORWARDS) log('forward', { type: 'msg', from: m.name, msgId: frame.msgId, to: got });
}

// ------------------------------------------------------------------ message loop

function onText(m, data) {
  let frame;
  try { frame = JSON.parse(data.toString('utf8')); } catch { frame = undefined; }
  if (!frame || typeof frame !== 'object' || Array.isArray(frame)) {
    sendError(m.ws, 'bad_json');
    return;
  }
  const type = frame.type;
  if (type === 'ping') { sendJson(m.ws, { type: 'pong', ts: Date.now() }); return; }
  if (type !== 'msg' && type !== 'file-start' && type !== 'file-end') {
    sendError(m.ws, 'unknown_type', { message: `unknown type ${JSON.stringify(type)}` });
    return;
  }
  if (type === 'file-end') {
    if (frame.from !== undefined && frame.from !== m.name) { illegal(m, 'from_mismatch'); return; }
    onFileEnd(m, frame);
    return;
  }
  if (typeof frame.from !== 'string') { illegal(m, 'missing_from'); return; }
  if (frame.from !== m.name) { illegal(m, 'from_mismatch'); return; }
  if (!Array.isArray(frame.to)) { illegal(m, 'missing_to'); return; }
  if (type === 'msg') onMsg(m, frame);
  else onFileStart(m, frame);
}

// ------------------------------------------------------------------ handshake

function refuse(ws, info, code, errorCode, message) {
  if (errorCode) sendError(ws, errorCode, message ? { message } : {});
  log('auth_failure', { ...info, code, reason: errorCode || 'bad_token' });
  ws.close(code, errorCode || 'unauthorized');
}

function onConnection(ws, req) {
  const url = new URL(req.url, 'http://relay.invalid');
  const q = url.searchParams;
  const name = q.get('name');
  const v = q.get('v');
  const info = { remote: req.socket.remoteAddress, name: typeof name === 'string' ? name.slice(0, 40) : null };

  // ws closes with 1009 on an oversized frame; v1 wants an error frame and 4011.
  const origClose = ws.close;
  ws.close = function closeWith4011(code, reason) {
    if (code === 1009 && this.readyState === WebSocket.OPEN) {
      try { this.send(JSON.stringify({ type: 'error', code: 'msg_too_large', message: `frame exceeds ${MAX_PAYLOAD} bytes` })); } catch {}
      log('close', { name: info.name, code: 4011, reason: 'msg_too_large' });
      return origClose.call(this, 4011, 'msg_too_large');
    }
    return origClose.call(this, code, reason);
  };
  ws.on('error', (err) => log('ws_error', { name: info.name, error: err.message }));

  // 1. token: no error frame (no enumeration), close 1008.
  if (!tokenOk(q.get('token'))) return refuse(ws, info, 1008, null);
  // 2. version: missing means 1.
  if (v !== null && !(/^[0-9]+$/.test(v) && SUPPORTED_VERSIONS.has(Number(v)))) {
    return refuse(ws, info, 1008, 'version_mismatch', `supported protocol versions: ${[...SUPPORTED_VERSIONS].join(', ')}`);
  }
  // 3. name regex.
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    return refuse(ws, info, 4012, 'invalid_name', 'name must match ^[a-zA-Z0-9_-]{1,32}$');
  }
  // 4. uniqueness.
  if (members.has(name)) {
    log('name_conflict', { name, remote: info.remote });
    sendError(ws, 'name_taken', { message: `username "${name}" already in room` });
    ws.close(4009, 'name_taken');
    return;
  }
  // 5. capacity.
  if (members.size >= MAX_USERS) {
    return refuse(ws, info, 4015, 'room_full', `the room holds at most ${MAX_USERS} members`);
  }

  const m = { ws, name, illegal: 0, missedPongs: 0 };
  members.set(name, m);
  log('connect', { name, remote: info.remote, online: members.size });
  broadcastPresence(); // the newcomer's first frame, and the new list for everyone else

  ws.on('pong', () => { m.missedPongs = 0; });
  ws.on('message', (data, isBinary) => {
    if (members.get(name) !== m) return; // already removed
    if (isBinary) onBinary(m, data);
    else onText(m, data);
  });
  ws.on('close', (code, reason) => {
    if (members.get(name) !== m) return;
    members.delete(name);
    if (transfer && transfer.sender === m) abortTransfer('sender_disconnected');
    log('disconnect', { name, code, reason: reason.toString('utf8').slice(0, 64), online: members.size });
    broadcastPresence();
  });
}

// ------------------------------------------------------------------ heartbeat

const heartbeat = setInterval(() => {
  for (const m of members.values()) {
    if (m.missedPongs >= 2) {
      log('close', { name: m.name, code: 4010, reason: 'heartbeat_timeout' });
      try { m.ws.close(4010, 'heartbeat_timeout'); } catch {}
      m.ws.terminate(); // 'close' fires, which removes the member and re-broadcasts presence
      continue;
    }
    m.missedPongs += 1;
    try { m.ws.ping(); } catch {}
  }
}, HEARTBEAT_MS);

// ------------------------------------------------------------------ server

const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_PAYLOAD, clientTracking: false });
wss.on('connection', onConnection);

const server = http.createServer((req, res) => {
  res.writeHead(426, { 'content-type': 'text/plain' });
  res.end('nexscope relay: connect with a WebSocket to /ws?name=<name>&token=<token>&v=1\n');
});
server.on('upgrade', (req, socket, head) => {
  let pathname;
  try { pathname = new URL(req.url, 'http://relay.invalid').pathname; } catch { pathname = ''; }
  if (pathname !== '/ws') {
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});
server.listen(PORT, HOST, () => {
  const a = server.address();
  log('listening', { host: a.address, port: a.port, pid: process.pid, maxUsers: MAX_USERS, maxPayload: MAX_PAYLOAD });
});

function shutdown(sig) {
  log('shutdown', { signal: sig });
  clearInterval(heartbeat);
  for (const m of members.values()) { try { m.ws.close(1001, 'relay_shutdown'); } catch {} }
  server.close();
  setTimeout(() => process.exit(0), 200).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
