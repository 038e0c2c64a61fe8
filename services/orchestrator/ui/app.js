// app.js: the dashboard's frame: signing in, the sections, and the address (#/...) that says
// which one is shown. Each section is a module that draws into <main> and may poll the API
// while it is shown (ctx.every); leaving it stops the polling.
import { api, q, session, whenSignedOut } from './api.js';
import { h, flash, errorText, field } from './dom.js';
import { connectionsView } from './connections.js';
import { runsView, runView } from './runs.js';
import { conflictsView } from './conflicts.js';
import { settingsView } from './settings.js';
import { mappingsView } from './mappings.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const signout = document.getElementById('signout');
const UUID = '[0-9a-fA-F-]{36}';
const ROUTES = [
  [new RegExp('^/connections$'), 'connections', connectionsView],
  [new RegExp(`^/connections/(${UUID})/settings$`), 'connections', settingsView],
  [new RegExp('^/runs$'), 'runs', runsView],
  [new RegExp(`^/runs/(${UUID})$`), 'runs', runView],
  [new RegExp('^/conflicts$'), 'conflicts', conflictsView],
  [new RegExp('^/mappings$'), 'mappings', mappingsView],
];

let current = null; // the shown section's context

function signIn(message) {
  nav.hidden = true;
  signout.hidden = true;
  const key = h('input', { type: 'password', name: 'key', required: true, autocomplete: 'current-password', spellcheck: 'false' });
  const err = h('p', { class: 'field-error', id: 'signin-error', role: 'alert' }, message || '');
  const form = h('form', { id: 'signin', class: 'card narrow' },
    h('h1', null, 'Sign in'),
    h('p', null, 'With one of the engine\'s API keys (XS_API_KEYS). It stays in this browser tab only, and is sent to this server alone.'),
    field('API key', key, null), err,
    h('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    try {
      await api('GET', `/v1/organisations${q({ limit: 1 })}`, undefined, { key: key.value });
      session.set(key.value);
      key.value = '';
      route();
    } catch (e) {
      err.textContent = e.status === 401 ? 'The engine does not know this key.' : errorText(e);
      key.focus();
    }
  });
  main.replaceChildren(form);
  key.focus();
}

whenSignedOut((message) => {
  stop();
  session.clear();
  signIn(message);
});

signout.addEventListener('click', () => {
  stop();
  session.clear();
  flash('Signed out.');
  signIn('');
});

function stop() {
  if (current) current.stop();
  current = null;
}

// The pending conflicts' count beside "Conflicts".
async function conflictCount() {
  if (!session.key) return;
  try {
    const r = await api('GET', `/v1/conflicts${q({ status: 'PENDING', limit: 100 })}`);
    const n = r.conflicts.length;
    const el = document.getElementById('conflict-count');
    el.textContent = n >= 100 ? '100+' : n ? String(n) : '';
    el.hidden = !n;
  } catch {
    // shown again at the next count
  }
}

function context(params) {
  const timers = [];
  let alive = true;
  return {
    params,
    alive: () => alive,
    // busy: the person is typing in a form or has a part opened: a refresh would undo it.
    busy: (root) => {
      const a = document.activeElement;
      return (a && root.contains(a) && /^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName)) ||
             root.querySelector('details.sync[open]') !== null ||
             document.querySelector('dialog[open]') !== null;
    },
    // every calls fn every ms while the section is shown, until fn returns false.
    every(ms, fn) {
      const tick = async () => {
        if (!alive) return;
        let again = true;
        try {
          again = (await fn()) !== false;
        } catch (e) {
          if (e.status !== 401) flash(`Cannot refresh: ${errorText(e)}`, 'error');
        }
        if (alive && again) timers.push(setTimeout(tick, ms));
      };
      timers.push(setTimeout(tick, ms));
    },
    conflictsChanged: conflictCount,
    stop() {
      alive = false;
      timers.forEach(clearTimeout);
    },
  };
}

async function route() {
  const hash = window.location.hash.replace(/^#/, '') || '/connections';
  const [path, query] = hash.split('?');
  stop();
  if (!session.key) {
    signIn('');
    return;
  }
  nav.hidden = false;
  signout.hidden = false;
  const found = ROUTES.find(([rx]) => rx.test(path));
  if (!found) {
    window.location.hash = '#/connections';
    return;
  }
  const [rx, section, view] = found;
  for (const a of nav.querySelectorAll('a')) {
    if (a.dataset.section === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const ctx = context(new URLSearchParams(query || ''));
  current = ctx;
  main.setAttribute('aria-busy', 'true');
  try {
    await view(main, ctx, ...path.match(rx).slice(1));
  } catch (e) {
    if (e.status !== 401 && ctx.alive()) {
      main.replaceChildren(h('h1', null, 'Cannot show this page'), h('p', { class: 'error-text' }, errorText(e)),
        h('p', null, h('a', { href: '#/connections' }, 'Back to the connections')));
    }
  }
  main.setAttribute('aria-busy', 'false');
  document.title = `${nav.querySelector('[aria-current]')?.textContent.trim().split(' ')[0] || 'Sign in'} · xero-sync`;
  conflictCount();
}

window.addEventListener('hashchange', () => {
  route().then(() => main.focus({ preventScroll: true }));
});
setInterval(conflictCount, 15000);
route();
