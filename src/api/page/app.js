// watchpost status page: reads this watchpost's JSON API and its WebSocket.
//
// Rules this file keeps:
// - every value from the API is inserted as text (textContent / attributes), never
//   as HTML;
// - the API key lives in sessionStorage only, and is sent in the X-API-Key header (and
//   as the WebSocket subprotocol api-key.<key>), never in a URL;
// - a failed action is always reported on the page;
// - live through the WebSocket; when it drops, every view is polled every 5 s and
//   the page says so until the socket is back;
// - a button is offered only when the state allows its action.
'use strict';

(function () {
  const KEY_STORE = 'watchpost.apiKey';
  const POLL_MS = 5000;
  const HISTORY_MS = 15000;
  /** Coverage is read again this often, or sooner (at most every 5 s) after a
   * camera, worker or alert changed. */
  const COVERAGE_MS = 60000;
  const COVERAGE_DAYS = 90;
  const DAY_MS = 86400000;
  const MAX_EVENTS = 20;
  /** Dead letters listed per queue (the oldest; the rest are counted). */
  const DEAD_SHOWN = 5;
  const CHANNELS = ['events', 'detections', 'cameras', 'system', 'alerts', 'jobs'];

  const state = {
    health: null, ready: null, supervisor: null, breakers: null, pipeline: null,
    perf: null, history: null, queues: null, events: [], cameras: null, alerts: null, silences: null, resolved: null,
    live: false, socket: null, pollTimer: null, reconnectTimer: null,
    refreshTimer: null, lastUpdate: null, lastHistory: 0, readKeyDeclined: false,
    eventsNote: '', requeueButtons: new Map(), deadLetters: {},
    coverage: null, incidents: null, lastCoverage: 0, coverageDirty: false, windows: null,
  };

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- DOM helpers

  /** An element with text children only (strings become text nodes). */
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = String(v);
        else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
        else el.setAttribute(k, String(v));
      }
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function setText(el, text) {
    const t = text === null || text === undefined ? '' : String(text);
    if (el.textContent !== t) el.textContent = t;
  }

  // Every state word maps to a class and an icon, so no state is told by colour only.
  const KINDS = {
    ok: ['healthy', 'running', 'closed', 'normal', 'up', 'online', 'alive', 'ready'],
    warn: ['degraded', 'half_open', 'restarting', 'stopped', 'crashed', 'starting', 'stopping', 'not_ready', 'minimal', 'warning', 'stale', 'frozen', 'flooding'],
    bad: ['unhealthy', 'failed', 'open', 'offline', 'down', 'unreachable', 'critical'],
    off: ['disabled'],
  };
  const ICONS = { ok: '✓', warn: '▲', bad: '✕', off: '–', unknown: '?' };

  function kindOf(word) {
    for (const [kind, words] of Object.entries(KINDS)) if (words.includes(word)) return kind;
    return 'unknown';
  }

  function badge(word, label) {
    const kind = kindOf(word);
    return h('span', { class: `state ${kind}` },
      h('span', { class: 'icon', 'aria-hidden': 'true', text: ICONS[kind] }),
      h('span', { text: label || String(word || 'unknown').replace('_', ' ') }));
  }

  function setBadge(cell, word, label) {
    const key = `${word}|${label || ''}`;
    if (cell.dataset.badge === key) return;
    cell.dataset.badge = key;
    cell.replaceChildren(badge(word, label));
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return '—';
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${s % 60} s`;
    const hrs = Math.floor(m / 60);
    if (hrs < 48) return `${hrs} h ${m % 60} min`;
    return `${Math.floor(hrs / 24)} d ${hrs % 24} h`;
  }

  function ms(v) {
    return typeof v === 'number' && isFinite(v) ? `${v < 10 ? v.toFixed(1) : Math.round(v)} ms` : '—';
  }

  function clock(iso) {
    const d = iso ? new Date(iso) : new Date();
    return isNaN(d) ? '' : d.toLocaleTimeString();
  }

  /** A table row per key, created once and updated in place (buttons keep focus). */
  function keyedRow(tbody, key, cells) {
    let row = tbody.querySelector(`tr[data-key="${CSS.escape(key)}"]`);
    if (!row) {
      row = h('tr', { 'data-key': key });
      // Each cell carries its column's name, shown beside it on narrow screens.
      const heads = tbody.parentElement.tHead.rows[0].cells;
      for (let i = 0; i < cells; i++) row.append(h('td', { 'data-label': heads[i] ? heads[i].textContent : '' }));
      tbody.append(row);
    }
    row.dataset.seen = '1';
    return row.children;
  }

  function pruneRows(tbody) {
    for (const row of [...tbody.rows]) {
      if (row.dataset.seen !== '1') row.remove();
      else delete row.dataset.seen;
    }
  }

  // ---------------------------------------------------------------- messages

  function showMessage(text, kind) {
    const box = $('message');
    box.className = `banner ${kind || 'warn'}`;
    box.textContent = text;
    box.hidden = false;
    clearTimeout(showMessage.timer);
    if (kind === 'ok') showMessage.timer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  // ---------------------------------------------------------------- API and key

  function storedKey() {
    try { return sessionStorage.getItem(KEY_STORE) || ''; } catch (_) { return ''; }
  }

  function storeKey(key) {
    try {
      if (key) sessionStorage.setItem(KEY_STORE, key);
      else sessionStorage.removeItem(KEY_STORE);
    } catch (_) { /* storage disabled: the key lasts until the next prompt */ }
  }

  let keyRequest = null;

  /** Ask for the key (one dialog at a time); resolves true when one was entered. */
  function askKey(why) {
    if (keyRequest) return keyRequest;
    const dialog = $('key-dialog');
    const input = $('key-input');
    setText($('key-why'), why);
    input.value = '';
    keyRequest = new Promise((resolve) => {
      const done = (ok) => {
        dialog.removeEventListener('close', onClose);
        keyRequest = null;
        resolve(ok);
      };
      const onClose = () => {
        const key = input.value.trim();
        input.value = '';
        if (dialog.returnValue === 'ok' && key) {
          storeKey(key);
          connect(); // the socket needs the key too
          done(true);
        } else {
          done(false);
        }
      };
      dialog.addEventListener('close', onClose);
      dialog.returnValue = '';
      dialog.showModal();
      input.focus();
    });
    return keyRequest;
  }

  async function api(path, method, payload) {
    const headers = { Accept: 'application/json' };
    const key = storedKey();
    if (key) headers['X-API-Key'] = key;
    if (payload !== undefined) headers['Content-Type'] = 'application/json';
    let resp;
    try {
      resp = await fetch(path, {
        method: method || 'GET', headers, cache: 'no-store', credentials: 'same-origin',
        body: payload === undefined ? undefined : JSON.stringify(payload),
      });
    } catch (e) {
      return { ok: false, status: 0, body: { detail: 'watchpost did not answer (is it running?)' } };
    }
    let body = null;
    try { body = await resp.json(); } catch (_) { body = null; }
    return { ok: resp.ok, status: resp.status, body };
  }

  function failure(r) {
    const detail = r.body && typeof r.body.detail === 'string' ? r.body.detail : '';
    if (r.status === 401) return `the API key was missing or wrong${detail ? ` (${detail})` : ''}`;
    if (r.status === 403) return `refused: ${detail || 'not allowed from here'}`;
    if (r.status === 0) return detail;
    return `${r.status}${detail ? `: ${detail}` : ''}`;
  }

  /** A GET whose 401 asks for the key once (reads protected by auth.protect_reads). */
  async function read(path) {
    let r = await api(path);
    if (r.status === 401 && !state.readKeyDeclined) {
      // Asked once; a declined prompt is not repeated by every poll.
      if (await askKey('Reading this watchpost needs one of its API keys.')) r = await api(path);
      else state.readKeyDeclined = true;
    }
    return r;
  }

  /** An action (POST unless told): asks for the key on 401, retries once, always
   * reports. */
  async function act(label, path, button, method, body) {
    if (button) button.disabled = true;
    try {
      let r = await api(path, method || 'POST', body);
      if (r.status === 401) {
        const entered = await askKey(`"${label}" needs one of the API keys configured for watchpost.`);
        if (!entered) {
          showMessage(`${label}: not done, no API key was given.`, 'bad');
          return;
        }
        r = await api(path, method || 'POST', body);
        if (r.status === 401) storeKey('');
      }
      if (r.ok) {
        showMessage((r.body && r.body.message) || `${label}: done.`, 'ok');
      } else {
        showMessage(`${label} failed: ${failure(r)}`, 'bad');
      }
    } finally {
      if (button) button.disabled = false;
      refreshSoon();
    }
  }

  // ---------------------------------------------------------------- rendering

  /** The one verdict at the top: the alerts that fire (not silenced) come first, so
   * the page never says "healthy" above a firing alert; "All systems operational"
   * only when nothing fires and the service is healthy. */
  function verdict() {
    const firing = ((state.alerts && state.alerts.items) || [])
      .filter((a) => !(Array.isArray(a.silenced_by) && a.silenced_by.length));
    const critical = firing.filter((a) => a.severity === 'critical');
    const warnings = firing.filter((a) => a.severity !== 'critical');
    const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
    const named = firing.map((a) => `${a.alertname} (${a.source})`).join(', ');
    if (critical.length) {
      const more = warnings.length ? ` and ${plural(warnings.length, 'warning')}` : '';
      return { word: 'critical', text: `${plural(critical.length, 'critical alert')}${more}`, reason: named };
    }
    if (warnings.length) return { word: 'warning', text: plural(warnings.length, 'warning'), reason: named };
    const hlt = state.health;
    if (!hlt) return { word: 'unknown', text: 'unknown (health not readable)', reason: '' };
    if (hlt.status === 'healthy') return { word: 'healthy', text: 'All systems operational', reason: '' };
    return { word: hlt.status, text: hlt.status, reason: hlt.message };
  }

  function renderOverall() {
    const v = verdict();
    const box = $('overall');
    box.className = `state ${kindOf(v.word)}`;
    setText(box.querySelector('.icon'), ICONS[kindOf(v.word)]);
    setText($('overall-text'), v.text);
    document.title = `● ${v.text} — watchpost`;
    const mode = state.pipeline && state.pipeline.degradation ? state.pipeline.degradation.mode : null;
    setText($('overall-mode'), mode && mode !== 'normal' ? `Degradation mode: ${mode}` : '');
    setText($('overall-reason'), v.reason);
    const hlt = state.health;
    setText($('version'), hlt && hlt.version ? `v${hlt.version}` : '');
    renderFirstRun();
  }

  /** A first start (nothing reachable, no camera yet) is explained, not just red. */
  function firstRun() {
    const hlt = state.health;
    const cams = state.cameras && Array.isArray(state.cameras.cameras) ? state.cameras.cameras : [];
    const down = (dep) => dep && dep.status !== 'healthy';
    return Boolean(hlt && down(hlt.postgres) && down(hlt.redis) && cams.length === 0);
  }

  function renderFirstRun() {
    const first = firstRun();
    $('first-run').hidden = !first;
    const root = state.pipeline && state.pipeline.file_watcher ? state.pipeline.file_watcher.camera_root : '';
    setText($('first-run-root'), root || 'the camera folder');
  }

  /** A small picture of an image under the camera root, or nothing. The thumbnail is a
   * read like any other: with a stored key it is fetched with it (reads may be
   * protected), else loaded directly. */
  const thumbs = new Map();
  function thumb(path, alt) {
    if (!path) return null;
    const img = h('img', { class: 'thumb', alt, loading: 'lazy', 'data-path': path });
    img.addEventListener('error', () => img.replaceWith(h('span', { class: 'thumb gone muted', text: 'picture gone' })));
    const url = `/api/system/thumbnail?path=${encodeURIComponent(path)}`;
    const key = storedKey();
    if (!key) {
      img.src = url;
    } else if (thumbs.has(path)) {
      img.src = thumbs.get(path);
    } else {
      fetch(url, { headers: { 'X-API-Key': key } })
        .then((r) => (r.ok ? r.blob() : Promise.reject(new Error(String(r.status)))))
        .then((b) => {
          if (thumbs.size > 200) thumbs.clear();
          const u = URL.createObjectURL(b);
          thumbs.set(path, u);
          img.src = u;
        })
        .catch(() => img.dispatchEvent(new Event('error')));
    }
    return img;
  }

  function renderDeps() {
    const tbody = $('deps').tBodies[0];
    const checks = state.ready && state.ready.checks ? state.ready.checks : {};
    const hlt = state.health;
    const rows = [];
    if (hlt && hlt.postgres) rows.push(['PostgreSQL', hlt.postgres.status, checks.database ? checks.database.latency_ms : null, hlt.postgres.message]);
    if (hlt && hlt.redis) rows.push(['Redis', hlt.redis.status, checks.redis ? checks.redis.latency_ms : null, hlt.redis.message]);
    for (const s of (hlt && hlt.ai_services) || []) {
      rows.push([s.display_name || s.name, s.status, s.response_time_ms, s.error || `breaker ${String(s.circuit_state).replace('_', ' ')}`]);
    }
    for (const [name, status, latency, detail] of rows) {
      const c = keyedRow(tbody, name, 4);
      setText(c[0], name);
      setBadge(c[1], status);
      setText(c[2], ms(latency));
      setText(c[3], detail);
    }
    pruneRows(tbody);
  }

  /** Which worker actions its state allows (the supervisor refuses the others). */
  const WORKER_ACTIONS = {
    start: (w) => ['stopped', 'crashed', 'failed'].includes(w.status),
    stop: (w) => ['running', 'restarting', 'crashed'].includes(w.status),
    restart: () => true,
    reset: (w) => w.status === 'failed' || w.restart_count > 0,
  };

  function workerButtons(cell, w) {
    buildWorkerButtons(cell, w.name);
    for (const b of cell.querySelectorAll('button')) {
      const allowed = WORKER_ACTIONS[b.dataset.action];
      const hidden = allowed ? !allowed(w) : false;
      // A focused button that goes away hands the focus to its row's first action.
      if (hidden && document.activeElement === b) {
        const next = [...cell.querySelectorAll('button')].find((x) => x !== b && !x.hidden);
        if (next) next.focus();
      }
      b.hidden = hidden;
    }
  }

  function buildWorkerButtons(cell, name) {
    if (cell.dataset.built) return;
    cell.dataset.built = '1';
    cell.className = 'actions';
    const base = `/api/system/supervisor/workers/${encodeURIComponent(name)}`;
    const actions = [
      ['Start', `${base}/start`], ['Stop', `${base}/stop`], ['Restart', `${base}/restart`],
      ['Reset', `/api/system/supervisor/reset/${encodeURIComponent(name)}`],
    ];
    for (const [verb, path] of actions) {
      const b = h('button', { type: 'button', 'data-action': verb.toLowerCase(), 'aria-label': `${verb} ${name}`, text: verb });
      b.addEventListener('click', () => act(`${verb} ${name}`, path, b));
      cell.append(b);
    }
  }

  function renderWorkers() {
    const tbody = $('workers').tBodies[0];
    const workers = state.supervisor && state.supervisor.workers ? state.supervisor.workers : [];
    for (const w of workers) {
      const c = keyedRow(tbody, w.name, 6);
      setText(c[0], w.name);
      setBadge(c[1], w.status);
      setText(c[2], `${w.restart_count} / ${w.max_restarts}`);
      if (w.status === 'running' && w.last_started_at) c[3].dataset.since = w.last_started_at;
      else delete c[3].dataset.since;
      if (!c[3].dataset.since) setText(c[3], '—');
      c[4].className = 'error';
      setText(c[4], w.error || '');
      workerButtons(c[5], w);
    }
    pruneRows(tbody);
    tick();
  }

  function renderBreakers() {
    const tbody = $('breakers').tBodies[0];
    const all = state.breakers && state.breakers.circuit_breakers ? state.breakers.circuit_breakers : {};
    for (const b of Object.values(all)) {
      const c = keyedRow(tbody, b.name, 5);
      setText(c[0], b.name);
      setBadge(c[1], b.state);
      setText(c[2], `${b.failure_count} in a row · ${b.total_calls} calls, ${b.rejected_calls} rejected`);
      const recovery = b.config ? b.config.recovery_timeout_seconds : null;
      if (b.state === 'open' && b.opened_at && recovery !== null) {
        c[3].dataset.until = String(new Date(b.opened_at).getTime() + recovery * 1000);
      } else {
        delete c[3].dataset.until;
        setText(c[3], b.state === 'half_open' ? 'now (trial calls allowed)' : '—');
      }
      if (!c[4].dataset.built) {
        c[4].dataset.built = '1';
        c[4].className = 'actions';
        const btn = h('button', { type: 'button', 'data-action': 'reset', 'aria-label': `Reset breaker ${b.name}`, text: 'Reset' });
        btn.addEventListener('click', () => act(`Reset breaker ${b.name}`, `/api/system/circuit-breakers/${encodeURIComponent(b.name)}/reset`, btn));
        c[4].append(btn);
      }
    }
    pruneRows(tbody);
    tick();
  }

  function facts(dl, pairs) {
    dl.replaceChildren(...pairs.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', null, v)]));
  }

  function renderPipeline() {
    const p = state.pipeline;
    if (!p) return;
    const fw = p.file_watcher || {};
    facts($('watcher'), [
      ['Watcher', badge(fw.running ? 'running' : 'stopped')],
      ['Observer', fw.observer_type || '—'],
      ['Pending files', String(fw.pending_tasks ?? '—')],
      ['Camera folder', fw.camera_root || '—'],
      ...(fw.error ? [['Error', fw.error]] : []),
    ]);
    // What was refused in the last hour, and why, in words.
    const WHY = {
      rejected_size: 'too small to be a picture (under file_watcher.min_file_bytes)',
      rejected_extension: 'not a .jpg, .jpeg or .png file',
      rejected_too_large: 'larger than file_watcher.max_file_bytes',
      ignored_root: 'not in a camera\'s folder (put pictures in a folder per camera)',
      rejected_name: 'a name that is not clean UTF-8',
      rejected_symlink: 'a symbolic link (never followed)',
      rejected_not_regular: 'not a regular file',
      rejected_unreadable: 'not readable by watchpost',
      too_many_cameras: 'its folder would be a camera beyond cameras.max_cameras',
      camera_id_taken: 'its folder looks like another camera\'s folder',
    };
    const refused = Object.entries(fw.refused_last_hour || {});
    $('refused').replaceChildren(...refused.map(([reason, n]) =>
      h('li', { 'data-key': reason }, h('strong', { text: `${n} file${n === 1 ? '' : 's'}` }), ` refused: ${WHY[reason] || reason}`)));
    $('refused').hidden = refused.length === 0;
    $('refused-none').hidden = refused.length > 0;
    const d = p.degradation || {};
    const spool = Object.values(d.fallback_queues || {}).reduce((a, n) => a + (Number(n) || 0), 0);
    const q = state.queues || (state.perf && state.perf.inference ? state.perf.inference.queues : null) || {};
    const dead = p.dead_letters || {};
    // A queue's dead letters get a Requeue button (for after the cause is fixed). The
    // button is made once per queue and re-attached, so a refresh never swaps it under
    // a pointer.
    const queueFacts = (name, label) => {
      const n = Number(dead[name] ?? 0);
      const text = `${q[name] ?? '—'} waiting · ${n} dead letter${n === 1 ? '' : 's'}`;
      if (n <= 0) return [label, text];
      let btn = state.requeueButtons.get(name);
      if (!btn) {
        btn = h('button', { type: 'button', 'data-action': 'requeue', 'aria-label': `Requeue the ${name} dead letters`, text: 'Requeue' });
        btn.addEventListener('click', () => act(`Requeue ${name} dead letters`, `/api/system/pipeline/dead-letters/${name}/requeue`, btn));
        state.requeueButtons.set(name, btn);
      }
      return [label, h('span', null, `${text} `, btn)];
    };
    facts($('queues'), [
      queueFacts('detection', 'Detection'),
      queueFacts('analysis', 'Analysis'),
      ['Redis', badge(d.redis_healthy ? 'up' : 'down', d.redis_healthy ? 'reachable' : 'unreachable')],
      ['Spooled to disk', String(spool)],
      ['Held in memory', String(d.memory_queue_size ?? 0)],
    ]);
    const banner = $('spool-banner');
    banner.dataset.redis = d.redis_healthy === false ? 'down' : 'up';
    if (d.redis_healthy === false && !firstRun()) {
      banner.textContent = `Redis is unreachable: new work is being spooled (${spool} item${spool === 1 ? '' : 's'} on disk, ${d.memory_queue_size ?? 0} in memory) and will be replayed in order when Redis is back. Nothing is lost.`;
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
    renderDeadLetters();
    renderBatches();
  }

  /** Each dead letter: queue, reason, the file (or batch) and the error. */
  function renderDeadLetters() {
    const rows = [];
    for (const [name, page] of Object.entries(state.deadLetters)) {
      for (const d of page.items || []) {
        const it = d.item || {};
        const what = it.file_path || it.batch_id || d.id;
        rows.push(h('li', { class: 'dead-letter' },
          h('strong', { text: `${name} · ${d.reason}` }), ` ${what}`,
          h('div', { class: 'muted', text: d.detail })));
      }
      const more = (page.total || 0) - (page.count || 0);
      if (more > 0) rows.push(h('li', { class: 'muted', text: `…and ${more} more in the ${name} queue` }));
    }
    const list = $('dead-letters');
    list.replaceChildren(...rows);
    list.hidden = rows.length === 0;
  }

  /** Open batches; their ages move with the clock (`tick`). */
  function renderBatches() {
    const ba = (state.pipeline && state.pipeline.batch_aggregator) || {};
    const windowS = ba.batch_window_seconds || 1;
    const batches = ba.batches || [];
    // `started_at` is on the server's clock; keep the age the server measured.
    const offset = state.pipeline ? Date.now() - new Date(state.pipeline.timestamp).getTime() : 0;
    $('batches').replaceChildren(...batches.map((b) => {
      const bornAt = String(Date.now() - offset - b.age_seconds * 1000);
      return h('li', { class: 'batch' },
        h('div', null, h('strong', { text: b.camera_id }),
          ` · ${b.detection_count} detection${b.detection_count === 1 ? '' : 's'} · `,
          h('span', { 'data-born': bornAt, 'data-window': windowS }),
          ` of a ${duration(windowS)} window`),
        h('meter', { min: 0, max: windowS, value: 0, 'data-born': bornAt, 'data-window': windowS, 'aria-label': `Age of the ${b.camera_id} batch against its window` }));
    }));
    $('batches-empty').hidden = batches.length > 0;
    tick();
  }

  /** Merge events (newest first, each once), keeping the latest MAX_EVENTS. */
  function addEvents(list) {
    const byId = new Map(state.events.map((e) => [e.event_id, e]));
    for (const e of list) byId.set(e.event_id, e);
    state.events = [...byId.values()].sort((a, b) => b.event_id - a.event_id).slice(0, MAX_EVENTS);
    renderEvents();
  }

  /** The events created before the page opened (PostgreSQL); later ones come live. */
  async function loadRecentEvents() {
    const r = await read(`/api/system/events/recent?limit=${MAX_EVENTS}`);
    if (r.ok && r.body && Array.isArray(r.body.events)) {
      state.eventsNote = '';
      addEvents(r.body.events.map((e) => ({ ...e, at: e.created_at })));
    } else {
      state.eventsNote = `Earlier events cannot be read now (${failure(r)}); new ones appear here as they are created.`;
      renderEvents();
    }
  }

  function renderEvents() {
    const list = $('events');
    list.replaceChildren(...state.events.map((e) => h('li', { class: 'event' },
      thumb(e.image_path, `The picture behind event ${e.event_id} (${e.camera_id})`),
      h('div', null,
        badge(e.risk_level === 'high' || e.risk_level === 'critical' ? 'critical' : e.risk_level === 'medium' ? 'warning' : 'healthy', `${e.risk_level} · ${e.risk_score}`),
        ' ', h('strong', { class: 'camera', text: e.camera_id }),
        ' ', h('span', { class: 'muted', text: clock(e.at) }),
        h('span', { class: 'summary', text: e.summary })))));
    const note = $('events-empty');
    setText(note, state.eventsNote || 'No security event yet; new ones appear here as they are created.');
    note.hidden = state.events.length > 0 && !state.eventsNote;
  }

  /** Images per hour as a small bar chart, scaled to the camera's busiest hour. */
  function hourlyBars(values) {
    const NS = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', `0 0 ${values.length * 4} 20`);
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('aria-hidden', 'true');
    const max = Math.max(1, ...values);
    values.forEach((v, i) => {
      const bar = document.createElementNS(NS, 'rect');
      const height = v > 0 ? Math.max(1, (v * 20) / max) : 0;
      bar.setAttribute('x', String(i * 4));
      bar.setAttribute('y', String(20 - height));
      bar.setAttribute('width', '3');
      bar.setAttribute('height', String(height));
      svg.append(bar);
    });
    return svg;
  }

  /** Every camera: status (icon and word), since when, its last image, why, and its
   * images per hour over the last day. */
  function renderCameras() {
    const list = $('cameras');
    const data = state.cameras;
    const cams = data && Array.isArray(data.cameras) ? data.cameras : [];
    // Several hosts (a fleet): each camera says which one holds its folder.
    const hosts = new Set(cams.map((c) => c.host));
    list.replaceChildren(...cams.map((c) => {
      const total = (c.hourly_images || []).reduce((a, n) => a + n, 0);
      const elsewhere = state.me && c.host !== state.me;
      return h('li', { class: 'camera', 'data-key': c.fleet_id || c.id, 'data-host': c.host, 'data-status': c.status },
        elsewhere ? null : thumb(c.last_image_path, `The newest image from ${c.folder}`),
        h('div', null, badge(c.status), ' ', h('strong', { class: 'folder', text: c.folder }),
          ' ', h('span', { class: 'muted', text: `(id ${c.fleet_id || c.id})` }),
          hosts.size > 1 || elsewhere ? h('span', { class: 'host muted', text: ` on ${c.host}` }) : null),
        h('div', { class: 'muted' },
          c.last_image_at ? 'last image ' : 'no image yet',
          c.last_image_at ? h('span', { 'data-ago': c.last_image_at }) : null,
          ` · ${c.images_last_hour} in the last hour · ${c.status} for `,
          h('span', { 'data-since': c.status_since })),
        h('div', { class: 'reason', text: c.reason }, ' ', h('span', { class: 'buttons' }, snoozeButton({ kind: 'camera', name: c.id }, c.folder, 1))),
        h('figure', { class: 'hourly' },
          hourlyBars(c.hourly_images || []),
          h('figcaption', { class: 'muted', text: `${total} image${total === 1 ? '' : 's'} in the last 24 hours, by hour` })));
    }));
    const empty = $('cameras-empty');
    setText(empty, data
      ? 'No camera yet: every folder of the camera root that sends images becomes one.'
      : 'The cameras cannot be read now.');
    empty.hidden = cams.length > 0;
    const refused = data && Array.isArray(data.refused_folders) ? data.refused_folders : [];
    $('cameras-refused').replaceChildren(...refused.map((f) =>
      h('li', { 'data-key': f.folder, 'data-reason': f.reason },
        h('strong', { class: 'folder', text: f.folder }), ' ',
        h('span', { class: 'muted', text: `(${f.reason.replace(/_/g, ' ')})` }),
        h('div', { class: 'reason', text: `Not taken: ${f.detail}.` }))));
    $('cameras-refused-box').hidden = refused.length === 0;
    tick();
  }

  // ---------------------------------------------------------------- coverage

  const CAUSE_WORDS = {
    camera_offline: 'camera offline', camera_frozen: 'camera frozen', camera_disabled: 'camera disabled',
    watcher_down: 'file watcher down', detection_down: 'detection down', analysis_down: 'analysis down',
    watchpost_down: 'watchpost not running', maintenance: 'maintenance (not counted)',
  };
  const NS = 'http://www.w3.org/2000/svg';

  function svgEl(tag, attrs) {
    const el = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    return el;
  }

  /** A part of a chart that says what it is when pointed at (its title), and in the
   * detail line when selected (click, Enter or Space). */
  function telling(el, text) {
    const title = svgEl('title', {});
    title.textContent = text;
    el.append(title);
    el.setAttribute('tabindex', '0');
    el.setAttribute('role', 'button');
    el.setAttribute('aria-label', text);
    const show = () => setText($('coverage-detail'), text);
    el.addEventListener('click', show);
    el.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); show(); }
    });
    return el;
  }

  /** Milliseconds of each cause within [from, to). */
  function causesIn(gaps, from, to) {
    const by = {};
    for (const g of gaps) {
      const a = Math.max(from, Date.parse(g.start));
      const b = Math.min(to, Date.parse(g.end));
      if (b > a) by[g.cause] = (by[g.cause] || 0) + (b - a);
    }
    return by;
  }

  /** The last 24 hours, a minute a unit: watched, unknown (before the history), and
   * each gap in its cause's colour. */
  function coverageStrip(cam, known, now) {
    const from = now - DAY_MS;
    const x = (t) => (Math.min(Math.max(t, from), now) - from) / 60000;
    const svg = svgEl('svg', { viewBox: '0 0 1440 10', preserveAspectRatio: 'none', class: 'strip' });
    svg.append(svgEl('rect', { class: 'unknown', x: 0, y: 0, width: 1440, height: 10 }));
    if (known < now) svg.append(svgEl('rect', { class: 'watched', x: x(known), y: 0, width: x(now) - x(known), height: 10 }));
    // Gaps closer together than a few minutes of the strip share one mark, which
    // lists each of them (the longest gives its colour).
    const marks = [];
    for (const g of cam.gaps) {
      const a = Date.parse(g.start);
      const b = Date.parse(g.end);
      if (b <= from) continue;
      const width = Math.max(x(b) - x(a), 4);
      const x0 = Math.min(x(a), 1440 - width);
      const last = marks[marks.length - 1];
      const text = `${CAUSE_WORDS[g.cause] || g.cause} from ${clock(g.start)} to ${clock(g.end)} (${duration((b - a) / 1000)}): ${g.detail}`;
      if (last && x0 <= last.x1) {
        last.x1 = Math.max(last.x1, x0 + width);
        last.gaps.push({ cause: g.cause, ms: b - a, text });
      } else {
        marks.push({ x0, x1: x0 + width, gaps: [{ cause: g.cause, ms: b - a, text }] });
      }
    }
    for (const m of marks) {
      const main = m.gaps.reduce((p, q) => (q.ms > p.ms ? q : p));
      const x0 = Math.min(m.x0, 1440 - (m.x1 - m.x0));
      const rect = svgEl('rect', {
        class: 'gap', 'data-cause': main.cause, 'data-causes': [...new Set(m.gaps.map((g) => g.cause))].join(' '),
        x: x0, y: 0, width: m.x1 - m.x0, height: 10,
      });
      svg.append(telling(rect, `${cam.name}: ${m.gaps.map((g) => g.text).join('; ')}`));
    }
    return svg;
  }

  /** The last 90 days, a cell a day (local days), coloured by the fraction watched;
   * each says its causes. */
  function coverageDays(cam, known, now) {
    const svg = svgEl('svg', { viewBox: `0 0 ${COVERAGE_DAYS * 10} 16`, preserveAspectRatio: 'none', class: 'days' });
    const midnight = new Date(now);
    midnight.setHours(0, 0, 0, 0);
    for (let i = 0; i < COVERAGE_DAYS; i++) {
      const day = new Date(midnight);
      day.setDate(day.getDate() - (COVERAGE_DAYS - 1 - i));
      const next = new Date(day);
      next.setDate(next.getDate() + 1);
      const from = Math.max(day.getTime(), known);
      const to = Math.min(next.getTime(), now);
      const label = day.toLocaleDateString(undefined, { weekday: 'short', day: 'numeric', month: 'short' });
      let cls = 'none';
      let text = `${cam.name}, ${label}: not watched by watchpost yet`;
      if (to > from) {
        const by = causesIn(cam.gaps, from, to);
        // Maintenance is planned: neither watched nor unwatched.
        const planned = by.maintenance || 0;
        const lost = Object.values(by).reduce((a, n) => a + n, 0) - planned;
        const fraction = to - from > planned ? 1 - lost / (to - from - planned) : 1;
        cls = fraction >= 0.999 ? 'good' : fraction >= 0.99 ? 'fair' : 'poor';
        const causes = Object.entries(by).sort((a, b) => b[1] - a[1])
          .map(([c, t]) => `${CAUSE_WORDS[c] || c} ${duration(t / 1000)}`);
        text = `${cam.name}, ${label}: ${(fraction * 100).toFixed(2)} % watched${causes.length ? ` · ${causes.join(', ')}` : ''}`;
        const main = Object.entries(by).sort((a, b) => b[1] - a[1])[0];
        const rect = svgEl('rect', { class: `day ${cls}`, x: i * 10 + 1, y: 0, width: 8, height: 16, 'data-day': i });
        if (main) rect.setAttribute('data-main-cause', main[0]);
        svg.append(telling(rect, text));
      } else {
        svg.append(telling(svgEl('rect', { class: `day ${cls}`, x: i * 10 + 1, y: 0, width: 8, height: 16, 'data-day': i }), text));
      }
    }
    return svg;
  }

  function renderCoverage() {
    const now = Date.now();
    const cams = (state.coverage && state.coverage.cameras) || [];
    const from = state.coverage ? Date.parse(state.coverage.from) : now;
    $('coverage').replaceChildren(...cams.map((c) => {
      const known = c.since ? Date.parse(c.since) : from;
      const day = causesIn(c.gaps, Math.max(now - DAY_MS, known), now);
      const planned = day.maintenance || 0;
      const lost = Object.values(day).reduce((a, n) => a + n, 0) - planned;
      const span = now - Math.max(now - DAY_MS, known) - planned;
      const part = span < DAY_MS - 60000 ? ` (of the ${duration(span / 1000)} known)` : '';
      const today = span > 0 ? `${((1 - lost / span) * 100).toFixed(2)} % watched in the last 24 hours${part}` : 'not watched by watchpost yet';
      return h('li', { class: 'coverage-camera', 'data-key': c.camera_id },
        h('div', null, h('strong', { class: 'folder', text: c.name }), ' ', h('span', { class: 'muted', text: today })),
        coverageStrip(c, known, now),
        coverageDays(c, known, now),
        h('div', { class: 'muted', text: `24 hours above, ${COVERAGE_DAYS} days below (a cell a day)` }));
    }));
    const note = $('coverage-empty');
    setText(note, state.coverage
      ? 'No coverage yet: it is recorded once a camera has sent an image and PostgreSQL answers.'
      : 'Coverage cannot be read now (it is kept in PostgreSQL).');
    note.hidden = cams.length > 0;
    renderIncidents();
  }

  /** The alert history grouped by cause (or by source when alone): when it began
   * and ended, how long, and what it affected. */
  function renderIncidents() {
    const alerts = (state.incidents && state.incidents.items) || [];
    const groups = new Map();
    for (const a of alerts) {
      const key = (a.labels && a.labels.cause) || a.source;
      const g = groups.get(key) || { key, cause: a.labels && a.labels.cause, alerts: [] };
      g.alerts.push(a);
      groups.set(key, g);
    }
    const list = [...groups.values()].map((g) => {
      const start = Math.min(...g.alerts.map((a) => Date.parse(a.started_at)));
      const ongoing = g.alerts.some((a) => !a.ended_at);
      const end = ongoing ? null : Math.max(...g.alerts.map((a) => Date.parse(a.ended_at)));
      return { ...g, start, end };
    }).sort((a, b) => b.start - a.start).slice(0, 20);
    $('incidents').replaceChildren(...list.map((g) => {
      const names = [...new Set(g.alerts.map((a) => a.alertname))].join(', ');
      const affected = [...new Set(g.alerts.map((a) => a.source))].join(', ');
      const lasted = g.end === null ? `ongoing for ${duration((Date.now() - g.start) / 1000)}` : `lasted ${duration((g.end - g.start) / 1000)}`;
      return h('li', { class: 'incident', 'data-key': g.key, 'data-ongoing': String(g.end === null) },
        h('div', null, badge(g.alerts.some((a) => a.severity === 'critical') ? 'critical' : 'warning'), ' ',
          h('span', { class: 'muted', text: g.end === null ? 'ongoing · ' : 'resolved · ' }),
          h('strong', { text: g.cause ? causeText(g.cause) : g.key }), ' ', h('span', { class: 'muted', text: `(${names})` })),
        h('div', { class: 'muted', text: `${new Date(g.start).toLocaleString()} → ${g.end === null ? 'now' : new Date(g.end).toLocaleString()} · ${lasted}` }),
        h('div', { class: 'affected', text: `affected: ${affected}` }));
    }));
    const note = $('incidents-empty');
    setText(note, state.incidents ? 'No incident in the recent alert history.' : 'The alert history cannot be read now.');
    note.hidden = list.length > 0;
  }

  /** An alert's runbook: a link only when the server made one (a runbook under
   * alerting.runbook_base_url); any other reference, such as one a received alert
   * brought, is shown as text. */
  function runbook(a) {
    const ref = (a.labels && a.labels.runbook_url) || `docs/runbook.md#${String(a.alertname).toLowerCase()}`;
    return a.runbook_link
      ? h('a', { href: a.runbook_link, rel: 'noopener noreferrer', text: 'runbook' })
      : h('span', { class: 'muted' }, 'runbook ', h('code', { text: ref }));
  }

  /** What a silence made from the page matches: watchpost's own alerts by name and
   * source; Prometheus's by name (the labels Alertmanager also sees). */
  function silenceMatchers(a) {
    return a.source === 'prometheus'
      ? { alertname: a.alertname }
      : { alertname: a.alertname, source: a.source };
  }

  function silenceButton(a, hours) {
    const label = `Silence ${a.alertname} for ${hours} h`;
    const b = h('button', { type: 'button', text: `Silence ${hours} h`, 'aria-label': label });
    b.addEventListener('click', () => act(label, '/api/system/alerts/silences', b, 'POST', {
      matchers: silenceMatchers(a), duration_seconds: hours * 3600, comment: 'silenced from the status page',
    }));
    return b;
  }

  /** A snooze of `scope` for `hours` (it always ends; the server bounds it). */
  function snoozeButton(scope, what, hours) {
    const label = `Snooze ${what} for ${hours} h`;
    const b = h('button', { type: 'button', text: `Snooze ${hours} h`, 'aria-label': label, 'data-snooze': `${scope.kind}:${scope.name || ''}` });
    b.addEventListener('click', () => act(label, '/api/system/maintenance', b, 'POST', {
      kind: 'snooze', scope, duration_seconds: hours * 3600, comment: 'snoozed from the status page',
    }));
    return b;
  }

  /** What a window's scope covers, in words. */
  function scopeText(scope) {
    switch (scope && scope.kind) {
      case 'everything': return 'everything';
      case 'camera': return `camera ${scope.name}`;
      case 'camera_group': return `camera group ${scope.name}`;
      case 'dependency': return scope.name;
      default: return '?';
    }
  }

  /** The scope to snooze for an alert about `source`, if one fits. */
  function scopeOf(source) {
    const [kind, ...rest] = String(source).split(':');
    const name = rest.join(':');
    if (kind === 'camera') return { kind: 'camera', name };
    if (kind === 'ai' || kind === 'breaker') return { kind: 'dependency', name };
    if (kind === 'postgres' || kind === 'redis') return { kind: 'dependency', name: kind };
    return null;
  }

  /** The windows and snoozes (with an End button for those made here), and the
   * banner while everything is snoozed. */
  function renderWindows() {
    const all = (state.windows && state.windows.windows) || [];
    $('windows').replaceChildren(...all.map((w) => {
      const end = w.origin === 'api' && (w.active || w.next) ? h('button', { type: 'button', text: 'End', 'aria-label': `End the ${w.kind} on ${scopeText(w.scope)}` }) : null;
      if (end) end.addEventListener('click', () => act(`End the ${w.kind}`, `/api/system/maintenance/${encodeURIComponent(w.id)}`, end, 'DELETE'));
      const when = w.active && w.current
        ? `until ${new Date(w.current.end).toLocaleString()}`
        : w.next ? `next ${new Date(w.next.start).toLocaleString()} for ${duration(w.duration_seconds)}` : 'ended';
      const weekly = w.days ? ` · every ${w.days.join(', ')} at ${w.start} (${w.timezone})` : '';
      return h('li', { class: 'window', 'data-key': w.id, 'data-kind': w.kind, 'data-active': String(w.active) },
        badge(w.active ? 'disabled' : 'starting', w.active ? `${w.kind} now` : w.kind), ' ',
        h('strong', { text: scopeText(w.scope) }),
        h('div', { class: 'muted' }, `${when}${weekly}`, w.comment ? ` · ${w.comment}` : '', w.origin === 'config' ? ' · from the config file' : '',
          end ? h('span', { class: 'buttons' }, end) : null));
    }));
    const note = $('windows-empty');
    setText(note, state.windows ? 'No maintenance window or snooze: everything firing is told.' : 'The windows cannot be read now.');
    note.hidden = all.length > 0;
    const everything = all.find((w) => w.active && w.scope && w.scope.kind === 'everything');
    const banner = $('quiet-banner');
    setText(banner, everything && everything.current
      ? `Everything is ${everything.kind === 'snooze' ? 'snoozed' : 'in maintenance'} until ${new Date(everything.current.end).toLocaleString()}: alerts are shown here, nobody is told.`
      : '');
    banner.hidden = !everything;
  }

  /** A cause (the `cause` label) in words. */
  function causeText(cause) {
    const [kind, ...rest] = String(cause).split(':');
    const name = rest.join(':');
    switch (kind) {
      case 'ai_host': return `AI host ${name}`;
      case 'camera_group': return `camera group ${name}`;
      case 'cameras': return 'cameras offline together';
      case 'postgres': return 'PostgreSQL';
      case 'redis': return 'Redis';
      default: return String(cause);
    }
  }

  /** Firing alerts (severity as icon and word, since when, runbook, silence
   * buttons, "caused by" when several share a cause), the silences (with an End
   * button) and the last resolved ones. */
  function renderAlerts() {
    const firing = (state.alerts && state.alerts.items) || [];
    const shared = {};
    for (const a of firing) {
      const c = a.labels && a.labels.cause;
      if (c) shared[c] = (shared[c] || 0) + 1;
    }
    $('alerts-firing').replaceChildren(...firing.map((a) => {
      const silenced = Array.isArray(a.silenced_by) && a.silenced_by.length > 0;
      return h('li', { class: `alert${silenced ? ' silenced' : ''}`, 'data-key': a.fingerprint, 'data-silenced': String(silenced) },
        h('div', null, badge(a.severity), ' ', h('strong', { text: a.alertname }),
          ' ', h('span', { class: 'muted', text: `(${a.source})` }),
          silenced ? h('span', { class: 'state off silenced-mark' }, h('span', { class: 'icon', 'aria-hidden': 'true', text: '🔕' }), h('span', { text: 'silenced' })) : null),
        h('div', { class: 'summary', text: a.summary }),
        a.labels && shared[a.labels.cause] > 1
          ? h('div', { class: 'muted caused-by', text: `caused by ${causeText(a.labels.cause)}: told as one notification with ${shared[a.labels.cause] - 1} more` })
          : null,
        h('div', { class: 'muted' }, 'firing for ', h('span', { 'data-since': a.started_at }), ' · ', runbook(a),
          // Offered only when a silence can be made now (PostgreSQL answers).
          silenced || !state.silences ? null : h('span', { class: 'buttons' }, silenceButton(a, 1), silenceButton(a, 8),
            scopeOf(a.source) ? snoozeButton(scopeOf(a.source), scopeText(scopeOf(a.source)), 1) : null),
          a.in_maintenance && a.in_maintenance.length ? h('span', { class: 'state off maintenance-mark', text: ' in maintenance' }) : null,
          a.acknowledged_at ? h('span', { class: 'state off acknowledged-mark', title: `acknowledged ${a.acknowledged_at}: not told again while it fires`, text: ' acknowledged' }) : null));
    }));
    const note = $('alerts-empty');
    setText(note, state.alerts ? 'Nothing is firing.' : 'The alerts cannot be read now.');
    note.hidden = firing.length > 0;

    const silences = ((state.silences && state.silences.items) || []).filter((x) => x.state !== 'expired');
    $('silences').replaceChildren(...silences.map((x) => {
      const end = h('button', { type: 'button', text: 'End', 'aria-label': 'End this silence' });
      end.addEventListener('click', () => act('End the silence', `/api/system/alerts/silences/${encodeURIComponent(x.id)}`, end, 'DELETE'));
      const matchers = Object.entries(x.matchers || {}).map(([k, v]) => `${k}=${v}`).join(', ');
      return h('li', { class: 'silence', 'data-key': x.id, 'data-state': x.state },
        badge(x.state === 'active' ? 'disabled' : 'starting', x.state), ' ',
        h('span', { class: 'matchers', text: matchers }),
        h('div', { class: 'muted' }, `until ${clock(x.ends_at)}`, x.comment ? ` · ${x.comment}` : '',
          h('span', { class: 'buttons' }, end)));
    }));
    const sNote = $('silences-empty');
    setText(sNote, state.silences ? 'No silence: every firing alert is sent out.' : 'The silences cannot be read now.');
    sNote.hidden = silences.length > 0;

    const resolved = (state.resolved && state.resolved.items) || [];
    $('alerts-resolved').replaceChildren(...resolved.map((a) => h('li', { class: 'alert resolved' },
      badge(a.severity), ' ', h('strong', { text: a.alertname }), ' ', h('span', { class: 'muted', text: `(${a.source})` }),
      h('div', { class: 'muted', text: `${clock(a.started_at)} → ${clock(a.ended_at)} · lasted ${duration(a.duration_seconds)}` }))));
    const rNote = $('resolved-empty');
    setText(rNote, state.resolved ? 'No alert has resolved yet.' : 'The alert history cannot be read now.');
    rNote.hidden = resolved.length > 0;
    tick();
  }

  /** The notifiers: state (a breaker's), what waits, last success or error, and a
   * "Send test" button each. */
  const NOTIFIER_STATE = { closed: 'delivering', open: 'failing', half_open: 'trying again' };

  function renderNotifiers() {
    const all = (state.notifiers && state.notifiers.notifiers) || [];
    $('notifiers').replaceChildren(...all.map((n) => {
      const test = h('button', { type: 'button', text: 'Send test', 'data-notifier': n.name, 'aria-label': `Send a test message through ${n.name}` });
      test.addEventListener('click', () => act(`Test of ${n.name}`, `/api/system/notifiers/${encodeURIComponent(n.name)}/test`, test));
      const last = n.last_error && (!n.last_success || n.last_error_at > n.last_success)
        ? h('div', { class: 'muted', text: `last error: ${n.last_error}` })
        : h('div', { class: 'muted' }, n.last_success ? 'last delivery ' : 'nothing sent yet', n.last_success ? h('span', { 'data-ago': n.last_success }) : null);
      return h('li', { class: 'notifier', 'data-key': n.name, 'data-state': n.state },
        // Its state in words a user reads (the API's are a breaker's).
        h('div', null, badge(n.state, NOTIFIER_STATE[n.state] || n.state), ' ', h('strong', { text: n.name }), ' ', h('span', { class: 'muted', text: `${n.kind} → ${n.target}` })),
        h('div', null, `${n.queue_depth} waiting`, n.connected === false ? ' · not connected' : '', h('span', { class: 'buttons' }, test)),
        last);
    }));
    // The dead man's switch, shown like a notifier.
    const hb = state.notifiers && state.notifiers.heartbeat;
    if (hb) {
      const ok = !hb.last_error;
      $('notifiers').append(h('li', { class: 'notifier heartbeat', 'data-key': 'heartbeat', 'data-state': ok ? 'closed' : 'open' },
        h('div', null, badge(ok ? 'closed' : 'open', ok ? 'delivering' : 'failing'), ' ', h('strong', { text: 'dead man\'s switch' }), ' ', h('span', { class: 'muted', text: `→ ${hb.failing ? hb.fail_url : hb.url}` })),
        h('div', { class: 'muted' }, hb.last_ping_at ? `last ${hb.last_ping} ping ` : 'no ping yet', hb.last_ping_at ? h('span', { 'data-ago': hb.last_ping_at }) : null,
          hb.last_error ? ` · last error: ${hb.last_error}` : '', ` · ${hb.pings_sent} sent, ${hb.pings_failed} failed`)));
    }
    const note = $('notifiers-empty');
    note.hidden = all.length > 0 || Boolean(hb);
    if (!state.notifiers) setText(note, 'The notifiers cannot be read now.');
  }

  const SERIES = [
    ['CPU', (s) => s.host && s.host.cpu_percent, '%'],
    ['RAM', (s) => s.host && s.host.ram_percent, '%'],
    ['Disk', (s) => s.host && s.host.disk_percent, '%'],
  ];

  function sparkline(values) {
    const NS = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '0 0 100 30');
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('aria-hidden', 'true');
    const y = (v) => 29 - (Math.min(100, Math.max(0, v)) * 28) / 100;
    // One sample is drawn as a flat line.
    const pts = values.length === 1
      ? [[0, y(values[0])], [100, y(values[0])]]
      : values.map((v, i) => [(i * 100) / (values.length - 1), y(v)]);
    const line = document.createElementNS(NS, 'polyline');
    line.setAttribute('points', pts.map(([x, y]) => `${x.toFixed(2)},${y.toFixed(2)}`).join(' '));
    svg.append(line);
    return svg;
  }

  /** Bytes as people read them. */
  function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = n;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
    return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
  }

  /** Each volume: a bar of its use, and when it is forecast full. */
  function renderStorage() {
    const volumes = (state.storage && state.storage.volumes) || [];
    $('storage').replaceChildren(...volumes.map((v) => {
      const known = typeof v.total_bytes === 'number' && v.total_bytes > 0 && typeof v.free_bytes === 'number';
      const used = known ? v.total_bytes - v.free_bytes : null;
      const full = v.full_at ? (new Date(v.full_at).getTime() - Date.now()) / 1000 : null;
      return h('li', { class: 'volume', 'data-volume': v.name },
        h('div', null, h('strong', { text: v.name }), ' ', h('span', { class: 'muted', text: v.path })),
        known ? h('meter', { min: '0', max: String(v.total_bytes), value: String(used), high: String(v.total_bytes * 0.8), optimum: '0', title: `${bytes(used)} of ${bytes(v.total_bytes)} used` }) : null,
        h('div', { class: 'muted' },
          known ? `${bytes(v.free_bytes)} free of ${bytes(v.total_bytes)}` : (typeof v.used_bytes === 'number' ? `${bytes(v.used_bytes)} used` : 'not measured'),
          ' · ',
          h('span', { class: full !== null ? 'state warn full-in' : 'full-in', text: full !== null ? `full in ${duration(Math.max(0, full))}` : 'not filling' })));
    }));
    // The last retention run by size: what, how much, why.
    const run = state.storage && state.storage.cleanup;
    if (run) {
      $('storage').append(h('li', { class: 'volume size-run' },
        h('div', null, h('strong', { text: 'retention by size' }), ' ', h('span', { class: 'muted', text: `cap ${bytes(run.max_media_bytes)}` })),
        h('div', { class: 'muted' }, run.at ? h('span', { 'data-ago': run.at }) : '', ` · ${run.files_deleted} image${run.files_deleted === 1 ? '' : 's'} deleted (${bytes(run.bytes_deleted)}) · ${run.reason}`)));
    }
    // The database's last run by size: the data it holds against its cap, and the rows it deleted.
    const db = state.storage && state.storage.database_cleanup;
    if (db) {
      const rows = [['detection', db.detections_deleted], ['event', db.events_deleted], ['alert', db.alerts_deleted]]
        .filter(([, n]) => n > 0).map(([what, n]) => `${n} ${what}${n === 1 ? '' : 's'}`);
      $('storage').append(h('li', { class: 'volume size-run', 'data-run': 'database' },
        h('div', null, h('strong', { text: 'database retention by size' }), ' ', h('span', { class: 'muted', text: `${bytes(db.data_bytes_after)} of data, cap ${bytes(db.max_database_bytes)}` })),
        h('div', { class: 'muted' }, db.at ? h('span', { 'data-ago': db.at }) : '', ` · ${rows.length ? `${rows.join(', ')} deleted` : 'nothing deleted'} · ${db.reason}`)));
    }
    const note = $('storage-empty');
    setText(note, state.storage ? 'Not measured yet.' : 'The storage figures cannot be read now.');
    note.hidden = volumes.length > 0;
  }

  /** Every instance sharing this Redis and PostgreSQL: up or lost, its cameras and
   * what it holds. */
  function renderFleet() {
    const all = (state.instances && state.instances.instances) || [];
    $('fleet').replaceChildren(...all.map((i) =>
      h('li', { 'data-instance': i.id, 'data-status': i.status },
        h('div', null, h('span', { class: `state ${i.status === 'up' ? 'ok' : 'bad'}`, text: i.status }), ' ',
          h('strong', { text: i.id }), i.id === state.me ? h('span', { class: 'muted', text: ' (this one)' }) : null, ' ',
          h('span', { class: 'muted', text: i.address })),
        h('div', { class: 'muted', text: `${i.cameras.length} camera${i.cameras.length === 1 ? '' : 's'} · heartbeat ${duration(i.heartbeat_age_seconds)} ago · pending: ${i.pending.detection} detection, ${i.pending.analysis} analysis · version ${i.version}` }))));
    const note = $('fleet-empty');
    setText(note, state.instances ? 'Not known yet.' : 'The fleet cannot be read now.');
    note.hidden = all.length > 0;
    $('fleet-box').hidden = all.length < 2;
  }

  function renderHost() {
    const snaps = state.history && state.history.snapshots ? state.history.snapshots : [];
    const box = $('host');
    box.replaceChildren(...SERIES.map(([label, pick, unit]) => {
      const values = snaps.map(pick).filter((v) => typeof v === 'number' && isFinite(v));
      const last = values.length ? values[values.length - 1] : null;
      const lo = values.length ? Math.min(...values) : null;
      const hi = values.length ? Math.max(...values) : null;
      return h('figure', { class: 'spark', 'data-series': label.toLowerCase() },
        h('figcaption', null, `${label} `, h('span', { class: 'value', text: last === null ? '—' : `${last.toFixed(1)} ${unit}` })),
        values.length ? sparkline(values) : h('p', { class: 'muted', text: 'no samples yet' }),
        h('span', { class: 'muted', text: values.length ? `${values.length} sample${values.length === 1 ? '' : 's'}, ${lo.toFixed(1)}–${hi.toFixed(1)} ${unit}` : '' }));
    }));
  }

  /** Live clocks: worker uptime and breaker countdown, once a second. */
  function tick() {
    const now = Date.now();
    for (const cell of document.querySelectorAll('[data-since]')) {
      setText(cell, duration((now - new Date(cell.dataset.since).getTime()) / 1000));
    }
    for (const el of document.querySelectorAll('[data-ago]')) {
      setText(el, `${duration((now - new Date(el.dataset.ago).getTime()) / 1000)} ago`);
    }
    for (const el of document.querySelectorAll('[data-born]')) {
      const age = Math.max(0, (now - Number(el.dataset.born)) / 1000);
      if (el.tagName === 'METER') el.value = Math.min(age, Number(el.dataset.window));
      else setText(el, duration(age));
    }
    for (const cell of document.querySelectorAll('[data-until]')) {
      const left = (Number(cell.dataset.until) - now) / 1000;
      setText(cell, left > 0 ? `in ${duration(left)}` : 'due now');
    }
  }

  function renderConnection() {
    const box = $('connection');
    // What was decided, for readers of the page (and its tests): live or polling.
    box.dataset.state = state.live ? 'live' : 'polling';
    if (state.live) {
      box.hidden = true;
      return;
    }
    const when = state.lastUpdate ? `; last update ${state.lastUpdate.toLocaleTimeString()}` : '';
    const key = storedKey() ? '' : ' (if API keys are configured, an action will ask for one and live updates will resume)';
    box.textContent = `Live updates are not connected: refreshing every 5 s${when}${key}.`;
    box.hidden = false;
  }

  // ---------------------------------------------------------------- data

  async function refreshAll() {
    const [health, ready, supervisor, breakers, pipeline, perf, cameras, alerts, silences, resolved, notifiers] = await Promise.all([
      read('/api/system/health/full'), read('/ready'), read('/api/system/supervisor'),
      read('/api/system/circuit-breakers'), read('/api/system/pipeline'), read('/api/system/performance'),
      read('/api/system/cameras?hourly=true'), read('/api/system/alerts?state=firing&limit=100'),
      read('/api/system/alerts/silences'), read('/api/system/alerts?state=resolved&limit=50'),
      read('/api/system/notifiers'), loadRecentEvents(),
    ]);
    const [windows, storage, instances] = await Promise.all([read('/api/system/maintenance'), read('/api/system/storage'), read('/api/system/instances')]);
    state.windows = windows.ok ? windows.body : null;
    state.instances = instances.ok ? instances.body : null;
    // This instance: the one whose cameras have thumbnails here.
    if (instances.ok && instances.body.self) state.me = instances.body.self;
    state.storage = storage.ok ? storage.body : null;
    // 503 answers of health and readiness still carry the assessment.
    state.health = health.body && health.body.status ? health.body : null;
    state.ready = ready.body && ready.body.checks ? ready.body : null;
    if (supervisor.ok) state.supervisor = supervisor.body;
    if (breakers.ok) state.breakers = breakers.body;
    if (pipeline.ok) state.pipeline = pipeline.body;
    if (perf.ok) state.perf = perf.body;
    state.cameras = cameras.ok ? cameras.body : null;
    // While PostgreSQL is away the firing alerts still come, from memory (503).
    state.alerts = alerts.body && Array.isArray(alerts.body.items) ? alerts.body : null;
    state.silences = silences.ok ? silences.body : null;
    state.resolved = resolved.ok ? resolved.body : null;
    state.notifiers = notifiers.ok ? notifiers.body : null;
    await refreshDeadLetters();
    const failed = [health, supervisor, pipeline].find((r) => r.status === 0 || r.status === 401 || r.status === 403);
    if (failed) showMessage(`Could not read watchpost: ${failure(failed)}`, 'bad');
    state.lastUpdate = new Date();
    renderOverall();
    renderDeps();
    renderWorkers();
    renderBreakers();
    renderPipeline();
    renderCameras();
    renderAlerts();
    renderWindows();
    renderNotifiers();
    renderStorage();
    renderFleet();
    renderConnection();
    // Every 15 s; sooner while the history is still short (just started).
    const short = !state.history || state.history.count < 10;
    if (short || Date.now() - state.lastHistory >= HISTORY_MS) await refreshHistory();
    const since = Date.now() - state.lastCoverage;
    if (since >= COVERAGE_MS || (state.coverageDirty && since >= POLL_MS)) await refreshCoverage();
  }

  /** The oldest dead letters of each queue that has any (no request otherwise). */
  async function refreshDeadLetters() {
    const dead = (state.pipeline && state.pipeline.dead_letters) || {};
    const names = Object.keys(dead).filter((name) => Number(dead[name]) > 0);
    const answers = await Promise.all(names.map((name) =>
      read(`/api/system/pipeline/dead-letters/${encodeURIComponent(name)}?limit=${DEAD_SHOWN}`)));
    state.deadLetters = Object.fromEntries(
      names.flatMap((name, i) => (answers[i].ok ? [[name, answers[i].body]] : [])));
  }

  async function refreshHistory() {
    state.lastHistory = Date.now();
    const r = await read('/api/system/performance/history?time_range=15m');
    if (r.ok) {
      state.history = r.body;
      renderHost();
    }
  }

  /** Each camera's last 90 days of coverage and the recent alert history. */
  async function refreshCoverage() {
    state.lastCoverage = Date.now();
    state.coverageDirty = false;
    const from = new Date(Date.now() - COVERAGE_DAYS * DAY_MS + 60000).toISOString();
    const [coverage, incidents] = await Promise.all([
      read(`/api/system/coverage?from=${encodeURIComponent(from)}`),
      read('/api/system/alerts?state=all&limit=100'),
    ]);
    state.coverage = coverage.ok ? coverage.body : null;
    state.incidents = incidents.ok ? incidents.body : null;
    renderCoverage();
  }

  function refreshSoon() {
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(refreshAll, 250);
  }

  function handle(msg) {
    const d = msg.data || {};
    if (/^(camera|alert|worker)\./.test(String(msg.type))) state.coverageDirty = true;
    switch (msg.type) {
      case 'event.created':
        addEvents([{ ...d, at: msg.timestamp }]);
        // Its picture is listed with it by the API.
        clearTimeout(state.eventsTimer);
        state.eventsTimer = setTimeout(loadRecentEvents, 500);
        break;
      case 'camera.status_changed':
        if (state.cameras && Array.isArray(state.cameras.cameras)) {
          const c = state.cameras.cameras.find((x) => x.id === d.camera_id);
          if (c) Object.assign(c, { status: d.status, reason: d.reason, status_since: msg.timestamp });
          renderCameras();
        }
        refreshSoon();
        break;
      case 'detection.batch':
        // Closed: drop it at once (the aggregator's view follows on its next tick).
        if (state.pipeline && state.pipeline.batch_aggregator) {
          const ba = state.pipeline.batch_aggregator;
          ba.batches = (ba.batches || []).filter((b) => b.batch_id !== d.batch_id);
          renderBatches();
        }
        refreshSoon();
        break;
      case 'system.status':
        state.queues = { detection: d.queue_detection, analysis: d.queue_analysis };
        refreshSoon();
        break;
      case 'system.subscribed':
      case 'job.progress':
        break;
      default:
        refreshSoon();
    }
  }

  // ---------------------------------------------------------------- live

  function startPolling() {
    if (!state.pollTimer) state.pollTimer = setInterval(refreshAll, POLL_MS);
    renderConnection();
  }

  function stopPolling() {
    clearInterval(state.pollTimer);
    state.pollTimer = null;
  }

  function connect() {
    clearTimeout(state.reconnectTimer);
    if (state.socket) {
      state.socket.onclose = null;
      state.socket.close();
      state.socket = null;
    }
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
    const key = storedKey();
    let ws;
    try {
      ws = key ? new WebSocket(url, [`api-key.${key}`]) : new WebSocket(url);
    } catch (_) {
      startPolling();
      state.reconnectTimer = setTimeout(connect, POLL_MS);
      return;
    }
    state.socket = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ action: 'subscribe', channels: CHANNELS }));
      state.live = true;
      stopPolling();
      renderConnection();
      // Events created while the socket was down are in the database (read again
      // by the refresh, as on every poll).
      refreshSoon();
    };
    ws.onmessage = (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch (_) { return; }
      handle(msg);
    };
    ws.onclose = () => {
      state.socket = null;
      state.live = false;
      startPolling();
      state.reconnectTimer = setTimeout(connect, POLL_MS);
    };
  }

  function start() {
    $('key-cancel').addEventListener('click', () => $('key-dialog').close(''));
    $('key-form').addEventListener('submit', (e) => {
      e.preventDefault();
      $('key-dialog').close('ok');
    });
    renderEvents();
    renderCameras();
    renderAlerts();
    renderHost();
    refreshAll();
    connect();
    setInterval(tick, 1000);
  }

  start();
}());
