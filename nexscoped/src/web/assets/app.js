// The nexscope page: every call is a varlink call to the daemon over one
// WebSocket (/api/ws); nothing here decides what the daemon decides.
// Text from peers is only ever set as textContent.
'use strict';

const CHAT = 'io.nexscope.Chat.';
const AGENT = 'io.nexscope.Agent.';
const $ = (selector) => document.querySelector(selector);

// ---- the bridge ------------------------------------------------------------

const bridge = {
  ws: null,
  next: 1,
  waiting: new Map(), // id -> function(reply)
  open: false,
};

// The page key from the login (kept per origin, so per port: another
// local server on another port never sees it); sent with every API call.
const KEY = 'nexscope.key';
function pageKey() {
  const m = /^#key=([0-9a-f]{64})$/.exec(location.hash);
  if (m) {
    localStorage.setItem(KEY, m[1]);
    history.replaceState(null, '', '/');
  }
  return localStorage.getItem(KEY) || '';
}
const authed = (init = {}) => Object.assign({ credentials: 'same-origin' }, init,
  { headers: Object.assign({ 'X-Nexscope-Key': pageKey() }, init.headers || {}) });

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  const ws = new WebSocket(scheme + location.host + '/api/ws?k=' + encodeURIComponent(pageKey()));
  bridge.ws = ws;
  ws.onopen = () => {
    bridge.open = true;
    setConn('live', 'ok');
    start();
  };
  ws.onmessage = (e) => {
    const reply = JSON.parse(e.data);
    const handler = bridge.waiting.get(reply.id);
    if (!handler) return;
    if (!reply.continues) bridge.waiting.delete(reply.id);
    handler(reply);
  };
  ws.onclose = () => {
    bridge.open = false;
    for (const handler of bridge.waiting.values()) {
      handler({ error: 'disconnected', parameters: { message: 'the daemon went away' } });
    }
    bridge.waiting.clear();
    view.watch = null;
    setConn('reconnecting…', 'bad');
    setTimeout(boot, 1000);
  };
}

function send(method, parameters, more, handler) {
  const id = bridge.next++;
  bridge.waiting.set(id, handler);
  bridge.ws.send(JSON.stringify({ id, method, parameters, more }));
  return id;
}

// One reply: its parameters, or an Error with the daemon's message.
function call(method, parameters = {}) {
  return new Promise((resolve, reject) => {
    if (!bridge.open) return reject(new Error('not connected to the daemon'));
    send(method, parameters, false, (reply) => {
      if (reply.error) reject(errorOf(reply));
      else resolve(reply.parameters || {});
    });
  });
}

// Every reply of a streaming call; returns a function that ends it.
function stream(method, parameters, onReply) {
  if (!bridge.open) {
    onReply({ error: 'disconnected', parameters: { message: 'not connected to the daemon' } });
    return () => {};
  }
  const id = send(method, parameters, true, onReply);
  return () => {
    if (bridge.waiting.delete(id) && bridge.open) bridge.ws.send(JSON.stringify({ id, cancel: true }));
  };
}

function errorOf(reply) {
  const p = reply.parameters || {};
  const error = new Error(p.message || p.parameter && ('bad parameter: ' + p.parameter) || reply.error);
  error.name = reply.error;
  return error;
}

// ---- small helpers -----------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function time(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function short(id) {
  return id ? String(id).slice(0, 8) : '';
}

function tokens(usage) {
  if (!usage) return '';
  return `${usage.inputTokens || 0} / ${usage.outputTokens || 0}`;
}

function cost(usage) {
  return usage && usage.costUsd ? '$' + usage.costUsd.toFixed(4) : '$0';
}

function setConn(text, cls) {
  const conn = $('#conn');
  conn.textContent = text;
  conn.className = 'conn ' + (cls || '');
}

function showError(selector, error) {
  $(selector).textContent = error ? String(error.message || error) : '';
}

// ---- the view ----------------------------------------------------------------

const view = {
  rooms: [],
  project: null,
  state: null, // RoomState of the project shown
  watch: null, // ends the Watch stream
  rows: new Map(), // msgId -> li
  files: new Map(), // msgId -> ReceivedFile
  members: [],
  agents: {},
  thread: null,
  refreshing: false,
  dirty: false,
  query: null, // ends the running query's stream
};

async function boot() {
  try {
    const me = await fetch('/api/me', authed());
    if (me.status === 401) {
      $('#login').hidden = false;
      $('#app').hidden = true;
      setConn('not logged in', 'bad');
      return;
    }
  } catch (e) {
    setConn('daemon not reachable', 'bad');
    setTimeout(boot, 2000);
    return;
  }
  $('#login').hidden = true;
  $('#logout').hidden = false;
  connect();
}

async function start() {
  $('#app').hidden = false;
  try {
    const { rooms } = await call(CHAT + 'Projects');
    view.rooms = rooms;
    renderProjects();
    let wanted = '';
    try {
      wanted = decodeURIComponent(location.hash.slice(1));
    } catch (e) { /* not a project */ }
    const first = rooms.find((r) => r.project === wanted) || rooms[0];
    if (first) await select(first.project);
    else {
      $('#room-title').textContent = 'No project has a room yet: run nexscopectl start in one.';
      for (const part of ['.room-facts', '#members', '#room-path']) $(part).hidden = true;
    }
  } catch (e) {
    $('#room-title').textContent = 'Cannot list projects: ' + e.message;
  }
}

function roomName(room) {
  return room.project.split('/').filter(Boolean).pop() || room.project;
}

function renderProjects() {
  const list = $('#project-list');
  const select = $('#project-select');
  list.replaceChildren();
  select.replaceChildren();
  for (const room of view.rooms) {
    const online = room.users.length;
    const item = el('li', { class: room.project === view.project ? 'active' : '' },
      el('button', { type: 'button', 'data-project': room.project, onclick: () => select_(room.project) },
        el('span', { class: 'pname', text: roomName(room) }),
        el('span', { class: 'pfacts', text: `${room.mode} · ${online} online${room.ready ? '' : ' · offline'}` })));
    list.append(item);
    select.append(el('option', { value: room.project, text: roomName(room) }));
  }
  select.value = view.project || '';
}
const select_ = (project) => select(project);

async function select(project) {
  if (view.watch) view.watch();
  view.watch = null;
  view.project = project;
  view.rows.clear();
  view.files.clear();
  view.thread = null;
  $('#timeline').replaceChildren();
  $('#thread-bar').hidden = true;
  history.replaceState(null, '', '#' + encodeURIComponent(project));
  renderProjects();
  const room = view.rooms.find((r) => r.project === project);
  if (room) renderRoom(room);
  watch(project);
  await Promise.all([refreshTimeline(), refreshWho(), refreshInbox()]);
  if (!$('#sessions-tab').hidden) refreshSessions();
}

function renderRoom(state) {
  view.state = state;
  $('#room-title').textContent = state.room ? `${roomName(state)} · room ${state.room}` : roomName(state);
  $('#room-path').textContent = `${state.project} — you are ${state.name} on ${state.relay}`;
  $('#room-state').textContent = state.error ? `stopped: ${state.error}` : state.ready ? 'joined' : 'reconnecting…';
  $('#room-state').className = state.ready ? 'ok' : 'bad';
  $('#mode').value = state.mode;
  $('#hop-limit').textContent = `hop limit ${state.hopLimit}`;
  const index = view.rooms.findIndex((r) => r.project === state.project);
  if (index >= 0) view.rooms[index] = state;
}

// The room's Watch stream; when it ends (the room stopped, an error), it
// is started again while the project is shown.
function watch(project) {
  view.watch = stream(CHAT + 'Watch', { project }, (reply) => {
    if (project !== view.project) return;
    if (reply.error || !reply.continues) {
      if (reply.error && reply.error !== 'disconnected') showError('#say-error', errorOf(reply));
      if (reply.error !== 'disconnected') setTimeout(() => { if (project === view.project && bridge.open) watch(project); }, 1000);
      if (reply.error) return;
    }
    onWatch(reply);
  });
}

function onWatch(reply) {
  const p = reply.parameters || {};
  if (p.state) {
    renderRoom(p.state);
    renderProjects();
  }
  if (p.event) {
    const kind = p.event.kind;
    if (kind === 'file_end') view.filesStale = true;
    if (kind === 'msg' || kind === 'file_end' || kind === 'file_start') {
      refreshTimeline();
      refreshInbox();
    }
    if (kind === 'presence') refreshWho();
  }
  if (p.receipt) applyReceipt(p.receipt);
}

// ---- members and mentions ----------------------------------------------------

async function refreshWho() {
  const project = view.project;
  try {
    const who = await call(CHAT + 'Who', { project });
    if (project !== view.project) return;
    view.members = who.users || [];
    view.agents = who.agents || {};
    const list = $('#members');
    list.replaceChildren();
    for (const name of view.members) {
      const kind = view.agents[name];
      const me = view.state && name === view.state.name;
      list.append(el('li', { class: 'member' + (me ? ' me' : '') }, el('span', { text: name }),
        kind ? el('span', { class: 'kind', text: kind }) : null));
    }
  } catch (e) { /* the room may be stopped: its state says so */ }
}

// The @word being typed before the cursor, if any.
function mentionAt(text, cursor) {
  const before = text.slice(0, cursor);
  const m = /(^|\s)@([A-Za-z0-9._-]*)$/.exec(before);
  return m ? { start: cursor - m[2].length, prefix: m[2] } : null;
}

function updateMentions() {
  const box = $('#say-text');
  const list = $('#mention-list');
  const at = mentionAt(box.value, box.selectionStart);
  const me = view.state && view.state.name;
  const names = at ? view.members.filter((n) => n !== me && n.toLowerCase().startsWith(at.prefix.toLowerCase())) : [];
  list.replaceChildren();
  list.hidden = names.length === 0;
  names.forEach((name, i) => {
    list.append(el('li', { role: 'option', class: i === 0 ? 'active' : '', text: '@' + name,
      onmousedown: (e) => { e.preventDefault(); complete(name); } }));
  });
}

function complete(name) {
  const box = $('#say-text');
  const at = mentionAt(box.value, box.selectionStart);
  if (!at) return;
  const before = box.value.slice(0, at.start);
  const after = box.value.slice(box.selectionStart);
  box.value = before + name + ' ' + after;
  const cursor = before.length + name.length + 1;
  box.setSelectionRange(cursor, cursor);
  $('#mention-list').hidden = true;
  box.focus();
}

function mentionKeys(e) {
  const list = $('#mention-list');
  if (list.hidden) {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      $('#say-form').requestSubmit();
    }
    return;
  }
  const items = [...list.children];
  const active = items.findIndex((li) => li.classList.contains('active'));
  if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    e.preventDefault();
    const next = (active + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
    items.forEach((li, i) => li.classList.toggle('active', i === next));
  } else if (e.key === 'Enter' || e.key === 'Tab') {
    e.preventDefault();
    complete(items[Math.max(active, 0)].textContent.slice(1));
  } else if (e.key === 'Escape') {
    list.hidden = true;
  }
}

// Leading @name words are the recipients (as `nexscopectl say @bob hi`).
function recipients(text) {
  const to = [];
  let rest = text.trim();
  for (;;) {
    const m = /^@([A-Za-z0-9._-]+)\s*/.exec(rest);
    if (!m) break;
    to.push(m[1]);
    rest = rest.slice(m[0].length);
  }
  return { to, text: rest };
}

// ---- the timeline ------------------------------------------------------------

// The timeline's latest messages: the last 200 at first, then the last 20
// on each change (200 again when all 20 are new: a burst).
async function refreshTimeline() {
  if (view.refreshing) {
    view.dirty = true;
    return;
  }
  view.refreshing = true;
  try {
    do {
      view.dirty = false;
      const project = view.project;
      let items = [];
      for (const limit of view.rows.size ? [20, 200] : [200]) {
        items = (await call(CHAT + 'History', { project, limit })).items;
        if (items.some((m) => view.rows.has(m.msgId))) break;
      }
      const newFile = items.some((m) => m.type === 'file-start' && !view.rows.has(m.msgId));
      if (newFile || view.filesStale) {
        view.filesStale = false;
        await refreshFiles(project);
      }
      // Switched meanwhile: start over for the project shown now.
      if (project !== view.project) {
        view.dirty = true;
        continue;
      }
      for (const item of items) renderMessage(item);
    } while (view.dirty);
  } catch (e) {
    showError('#say-error', e);
  } finally {
    view.refreshing = false;
  }
}

async function refreshFiles(project) {
  try {
    const { files } = await call(CHAT + 'Files', { project });
    if (project !== view.project) return;
    for (const f of files) view.files.set(f.msgId, f);
  } catch (e) { /* shown without a download link */ }
}

function renderMessage(m) {
  const known = view.rows.get(m.msgId);
  if (known) {
    renderReceipts(known, m.receipts || []);
    // A file shown at its start gets its link once it has arrived whole.
    const file = known.querySelector('.file');
    if (file && !file.dataset.stored && view.files.has(m.msgId)) file.replaceWith(fileBody(m, m.dir === 'in'));
    return;
  }
  const inbound = m.dir === 'in';
  const me = view.state ? view.state.name : 'me';
  const label = inbound ? (m.label || `[${m.role} ${m.from}]`) : `[${m.role === 'user' ? 'user' : 'userAgent'} ${me}] (you)`;
  const to = m.to && m.to.length ? m.to.map((n) => '@' + n).join(' ') : '@all';
  const head = el('div', { class: 'mhead' },
    el('span', { class: 'label', text: label }),
    el('span', { class: 'target', text: '→ ' + to }),
    el('button', { type: 'button', class: 'thread link', title: 'reply on this thread', text: 'thread ' + short(m.threadId),
      onclick: () => setThread(m.threadId) }),
    m.hopCount ? el('span', { class: 'hop', text: 'hop ' + m.hopCount }) : null,
    el('time', { text: time(m.ts) }));
  const body = m.type === 'file-start' ? fileBody(m, inbound) : el('div', { class: 'text', text: m.text || '' });
  const li = el('li', { class: 'msg ' + (inbound ? 'in' : 'out'), 'data-msg': m.msgId, 'data-thread': m.threadId }, head, body,
    el('ul', { class: 'receipts' }));
  renderReceipts(li, m.receipts || []);
  view.rows.set(m.msgId, li);
  const timeline = $('#timeline');
  const atBottom = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 80;
  timeline.append(li);
  if (atBottom) timeline.scrollTop = timeline.scrollHeight;
  // For the benchmark: when the first message was on screen.
  if (!performance.getEntriesByName('timeline').length) performance.mark('timeline');
}

function fileBody(m, inbound) {
  const a = m.attachment || {};
  const stored = view.files.get(m.msgId);
  const box = el('div', { class: 'file' },
    el('span', { class: 'fname', text: a.name || 'file' }),
    el('span', { class: 'muted', text: ` ${a.size || 0} bytes` }));
  if (m.text) box.append(el('div', { class: 'text', text: m.text }));
  const sha = (stored && stored.sha256) || a.sha256;
  if (sha) box.append(el('div', { class: 'sha', text: 'sha256 ' + sha }));
  if (inbound && stored) {
    // Received whole: the sha256 above is the one checked on arrival.
    box.dataset.stored = '1';
    box.append(el('span', { class: 'checked', text: 'checked on arrival' }));
    const q = new URLSearchParams({ project: view.project, msgId: m.msgId, k: pageKey() });
    box.append(el('a', { href: '/api/file?' + q, download: stored.name, text: 'download' }));
  } else if (!inbound) {
    box.dataset.stored = '1';
  }
  return box;
}

function renderReceipts(li, receipts) {
  const list = li.querySelector('.receipts');
  for (const r of receipts) {
    let chip = [...list.children].find((c) => c.dataset.recipient === r.recipient);
    if (!chip) {
      chip = el('li', { 'data-recipient': r.recipient });
      list.append(chip);
    }
    chip.className = 'receipt ' + r.state;
    chip.textContent = `${r.recipient}: ${r.state}${r.via ? ' (' + r.via + ')' : ''}`;
  }
}

function applyReceipt(receipt) {
  const li = view.rows.get(receipt.msgId);
  if (li) renderReceipts(li, [receipt]);
}

function setThread(thread) {
  view.thread = thread;
  $('#thread-id').textContent = thread;
  $('#thread-bar').hidden = !thread;
  $('#say-text').focus();
}

async function say(e) {
  e.preventDefault();
  showError('#say-error', null);
  const { to, text } = recipients($('#say-text').value);
  const file = $('#say-file').files[0];
  if (!text && !file) return;
  $('#say-send').disabled = true;
  try {
    if (file) await upload(file, text, to);
    else await call(CHAT + 'Say', { project: view.project, text, to, role: 'user', thread: view.thread || undefined });
    $('#say-text').value = '';
    $('#say-file').value = '';
    refreshTimeline();
  } catch (error) {
    showError('#say-error', error);
  } finally {
    $('#say-send').disabled = false;
  }
}

async function upload(file, text, to) {
  const q = new URLSearchParams({ project: view.project, name: file.name, to: to.join(',') });
  if (text) q.set('text', text);
  if (view.thread) q.set('thread', view.thread);
  const response = await fetch('/api/upload?' + q, authed({ method: 'POST', body: file }));
  const reply = await response.json().catch(() => ({ error: 'upload', parameters: { message: response.statusText } }));
  if (reply.error) throw errorOf(reply);
}

// ---- the inbox ---------------------------------------------------------------

async function refreshInbox() {
  const project = view.project;
  try {
    const { items, pending } = await call(CHAT + 'Inbox', { project });
    if (project !== view.project) return;
    $('#inbox-count').textContent = pending ? String(pending) : '';
    const open = $('#inbox');
    const done = $('#inbox-done');
    // What the person is typing survives the redraw.
    const typed = new Map();
    let focused = null;
    for (const input of open.querySelectorAll('.extra')) {
      const thread = input.closest('[data-thread]').dataset.thread;
      typed.set(thread, input.value);
      if (document.activeElement === input) focused = thread;
    }
    open.replaceChildren();
    done.replaceChildren();
    const threads = new Set();
    for (const item of items) {
      const row = el('li', { class: 'inbox-item ' + item.status, 'data-thread': item.threadId },
        el('div', { class: 'mhead' }, el('span', { class: 'label', text: item.label }),
          el('span', { class: 'muted', text: `thread ${short(item.threadId)} · ${time(item.ts)}` }),
          el('span', { class: 'status', text: item.status })),
        el('div', { class: 'text', text: item.text }));
      if (item.status === 'pending') {
        open.append(row);
        if (!threads.has(item.threadId)) {
          threads.add(item.threadId);
          row.append(inboxActions(item.threadId));
        }
      } else {
        done.append(row);
      }
    }
    if (!open.children.length) open.append(el('li', { class: 'muted', text: 'Nothing waits for you.' }));
    for (const input of open.querySelectorAll('.extra')) {
      const thread = input.closest('[data-thread]').dataset.thread;
      if (typed.has(thread)) input.value = typed.get(thread);
      if (thread === focused) input.focus();
    }
  } catch (e) { /* not joined: the room's state says so */ }
}

function inboxActions(thread) {
  const input = el('input', { class: 'extra', maxlength: '65536', placeholder: 'extra text, reason or message' });
  const act = (method, params) => async () => {
    try {
      await call(CHAT + method, Object.assign({ project: view.project, thread }, params()));
      input.value = '';
      refreshInbox();
      refreshTimeline();
    } catch (e) {
      showError('#say-error', e);
    }
  };
  return el('div', { class: 'actions' }, input,
    el('button', { type: 'button', class: 'accept', text: 'Accept', onclick: act('Accept', () => ({ extra: input.value || undefined })) }),
    el('button', { type: 'button', class: 'reject', text: 'Reject', onclick: act('Reject', () => ({ reason: input.value || undefined })) }),
    el('button', { type: 'button', class: 'append', text: 'Append', onclick: act('Append', () => ({ text: input.value })) }));
}

// ---- agent sessions ----------------------------------------------------------

async function refreshSessions() {
  try {
    const { sessions } = await call(AGENT + 'Sessions');
    const body = $('#sessions tbody');
    body.replaceChildren();
    for (const s of sessions) {
      const ref = { session: s.name, cwd: s.cwd };
      const state = s.processing ? 'working' : s.live ? 'idle' : 'stopped';
      body.append(el('tr', { 'data-session': s.name },
        el('td', {}, el('strong', { text: s.name }), el('div', { class: 'muted', text: s.cwd })),
        el('td', { text: s.backend }), el('td', { text: s.model || '' }), el('td', { text: s.permissionMode }),
        el('td', { text: state + (s.lastError ? ' — ' + s.lastError : '') }),
        el('td', { text: String(s.queueLength) }), el('td', { text: String(s.turns) }),
        el('td', { text: tokens(s.usage) }), el('td', { text: cost(s.usage) }),
        el('td', { class: 'row-actions' },
          el('button', { type: 'button', class: 'link', text: 'use', onclick: () => useSession(s) }),
          el('button', { type: 'button', class: 'link', text: 'turns', onclick: () => showTurns(ref) }),
          el('button', { type: 'button', class: 'link', text: 'cancel', onclick: () => sessionCall('Cancel', ref) }),
          el('button', { type: 'button', class: 'link', text: 'close', onclick: () => sessionCall('Close', ref) }),
          el('button', { type: 'button', class: 'link', text: 'forget', onclick: () => sessionCall('Close', Object.assign({ forget: true }, ref)) }))));
    }
    if (!sessions.length) body.append(el('tr', {}, el('td', { colspan: '10', class: 'muted', text: 'No agent sessions yet: run one below.' })));
  } catch (e) {
    showError('#q-error', e);
  }
}

function useSession(s) {
  $('#q-session').value = s.name;
  $('#q-cwd').value = s.cwd;
  $('#q-prompt').focus();
}

async function sessionCall(method, params) {
  showError('#q-error', null);
  try {
    await call(AGENT + method, params);
  } catch (e) {
    showError('#q-error', e);
  }
  refreshSessions();
}

async function showTurns(ref) {
  try {
    const { session, turns } = await call(AGENT + 'Usage', Object.assign({ turns: 20 }, ref));
    const rows = turns.map((t) => el('tr', {}, el('td', { text: t.turn }), el('td', { text: time(t.startedAt) }),
      el('td', { text: t.model || '' }), el('td', { text: tokens(t.usage) }), el('td', { text: cost(t.usage) }),
      el('td', { text: t.cancelled ? 'cancelled' : t.error || 'done' })));
    $('#turns').replaceChildren(el('h3', { text: `Turns of ${session.name} — in all ${tokens(session.usage)} tokens, ${cost(session.usage)}` }),
      el('div', { class: 'table-wrap' }, el('table', {}, el('thead', {}, el('tr', {}, ...['turn', 'started', 'model', 'tokens in/out', 'cost', 'end'].map((h) => el('th', { text: h })))),
        el('tbody', {}, ...rows))));
  } catch (e) {
    showError('#q-error', e);
  }
}

function queryTarget() {
  return { session: $('#q-session').value.trim() || 'default', cwd: $('#q-cwd').value.trim() || view.project || undefined };
}

function runQuery(e) {
  e.preventDefault();
  showError('#q-error', null);
  const prompt = $('#q-prompt').value.trim();
  if (!prompt) return;
  const params = Object.assign(queryTarget(), { prompt });
  for (const [key, input] of [['backend', '#q-backend'], ['model', '#q-model'], ['permissionMode', '#q-permission']]) {
    const value = $(input).value.trim();
    if (value) params[key] = value;
  }
  const out = $('#q-out');
  out.textContent = '';
  $('#q-state').textContent = 'queued';
  if (view.query) view.query();
  view.query = stream(AGENT + 'Query', params, (reply) => {
    if (reply.error) {
      showError('#q-error', errorOf(reply));
      $('#q-state').textContent = '';
      return;
    }
    const event = (reply.parameters || {}).event || {};
    switch (event.type) {
      case 'turn_start': $('#q-state').textContent = 'running'; refreshSessions(); break;
      case 'text': out.append(event.content || ''); break;
      case 'thinking': out.append(el('span', { class: 'thinking', text: event.content || '' })); break;
      case 'tool_use': out.append(el('span', { class: 'tool', text: `\n[tool ${event.name}]\n` })); break;
      case 'done':
        $('#q-state').textContent = event.cancelled ? 'cancelled' : event.error ? 'failed: ' + event.error : `done — ${tokens(event.usage)} tokens, ${cost(event.usage)}`;
        view.query = null;
        refreshSessions();
        break;
      default: break;
    }
  });
  $('#q-prompt').value = '';
}

// ---- wiring ------------------------------------------------------------------

function switchTab(name) {
  for (const button of document.querySelectorAll('.tabs button')) button.classList.toggle('active', button.dataset.tab === name);
  for (const tab of ['timeline', 'inbox', 'sessions']) $('#' + tab + '-tab').hidden = tab !== name;
  if (name === 'sessions') refreshSessions();
  if (name === 'inbox') refreshInbox();
}

document.addEventListener('DOMContentLoaded', () => {
  for (const button of document.querySelectorAll('.tabs button')) button.addEventListener('click', () => switchTab(button.dataset.tab));
  $('#say-form').addEventListener('submit', say);
  $('#say-text').addEventListener('input', updateMentions);
  $('#say-text').addEventListener('keydown', mentionKeys);
  $('#thread-clear').addEventListener('click', () => setThread(null));
  $('#project-select').addEventListener('change', (e) => select(e.target.value));
  $('#mode').addEventListener('change', async (e) => {
    try {
      await call(CHAT + 'Mode', { project: view.project, mode: e.target.value });
    } catch (error) {
      showError('#say-error', error);
    }
  });
  $('#query-form').addEventListener('submit', runQuery);
  $('#q-cancel').addEventListener('click', () => sessionCall('Cancel', queryTarget()));
  $('#logout').addEventListener('click', async () => {
    await fetch('/logout', authed({ method: 'POST' }));
    localStorage.removeItem(KEY);
    location.reload();
  });
  setInterval(() => { if (bridge.open && !$('#sessions-tab').hidden) refreshSessions(); }, 5000);
  boot();
});
