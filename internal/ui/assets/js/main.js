// The dashboard's entry point: sign-in, routing by the URL's fragment
// (#/, #/pipelines/NAME, #/runs/ID, #/deadletters?…) and live updates by
// polling the current page every few seconds.

import {api, setToken, token, setUnauthorizedHandler, APIError} from './api.js';
import {h, fill} from './dom.js';
import {setIdentity, whoami, dialogOpen} from './ui.js';
import * as overview from './overview.js';
import * as pipeline from './pipeline.js';
import * as run from './run.js';
import * as deadletters from './deadletters.js';

const POLL_MS = 5000;

const main = document.getElementById('main');
let current = null; // {refresh} of the page shown
let generation = 0;
let refreshing = false;

function parseRoute() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || '');
  if (parts.length === 0) return {page: overview, nav: 'overview', args: {}};
  if (parts[0] === 'pipelines' && parts.length === 2) return {page: pipeline, nav: 'overview', args: {name: parts[1]}};
  if (parts[0] === 'runs' && parts.length === 2) return {page: run, nav: 'overview', args: {id: parts[1]}};
  if (parts[0] === 'deadletters' && parts.length === 1) return {page: deadletters, nav: 'deadletters', args: {params}};
  return null;
}

async function show({focus}) {
  const gen = ++generation;
  current = null;
  const view = h('div', {class: 'view'});
  fill(main, view);
  const r = parseRoute();
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (r && a.dataset.nav === r.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!r) {
    fill(view, h('h1', {tabindex: -1}, 'Not found'), h('p', {}, 'No such page. ', h('a', {href: '#/'}, 'Back to the pipelines.')));
    if (focus) view.querySelector('h1').focus();
    return;
  }
  try {
    const page = await r.page.render(view, r.args);
    if (gen !== generation) return;
    current = page || null;
  } catch (e) {
    if (gen !== generation) return;
    if (e instanceof APIError && e.status === 401) return; // signed out
    fill(view, h('h1', {tabindex: -1}, 'Could not load this page'), h('p', {class: 'error', role: 'alert'}, e.message));
  }
  if (focus && gen === generation) {
    const h1 = view.querySelector('h1');
    if (h1) {
      h1.setAttribute('tabindex', '-1');
      h1.focus({preventScroll: false});
    }
  }
}

async function tick() {
  if (!current || !current.refresh || refreshing || document.hidden || dialogOpen()) return;
  const gen = generation;
  refreshing = true;
  try {
    await current.refresh(() => gen === generation);
  } catch (e) {
    if (!(e instanceof APIError && e.status === 401)) console.warn('refresh failed:', e.message);
  } finally {
    refreshing = false;
  }
}

function signedIn(id) {
  setIdentity(id);
  document.getElementById('nav').hidden = false;
  document.getElementById('who').hidden = false;
  document.getElementById('who-name').textContent =
    `${id.name} (${id.role === 'admin' ? 'admin' : 'read-only'})`;
  document.body.dataset.role = id.role;
}

function signOut(message) {
  setToken('');
  setIdentity(null);
  current = null;
  generation++;
  document.getElementById('nav').hidden = true;
  document.getElementById('who').hidden = true;
  delete document.body.dataset.role;
  login(message);
}

function login(message) {
  const input = h('input', {type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true,
    spellcheck: 'false', 'aria-describedby': 'token-help'});
  const err = h('p', {class: 'error', role: 'alert', id: 'login-error', hidden: !message}, message || '');
  const form = h('form', {class: 'login', id: 'login', 'aria-labelledby': 'login-title'},
    h('h1', {id: 'login-title', tabindex: -1}, 'Sign in to Backbone'),
    h('div', {class: 'field'},
      h('label', {for: 'token'}, 'API token'),
      input,
      h('p', {class: 'muted small', id: 'token-help'},
        'The admin or read-only token of this daemon ($BACKBONE_ADMIN_TOKEN or $BACKBONE_READ_TOKEN). ' +
        'It is kept in this tab only, until the tab closes.')),
    err,
    h('div', {class: 'buttons'}, h('button', {type: 'submit', class: 'primary', id: 'signin'}, 'Sign in')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const tok = input.value.trim();
    if (!tok) return;
    try {
      const id = await api.whoami(tok);
      setToken(tok);
      input.value = '';
      signedIn(id);
      show({focus: true});
    } catch (e) {
      err.hidden = false;
      err.textContent = e.status === 401 ? 'The daemon does not know this token.' : e.message;
      input.focus();
    }
  });
  fill(main, form);
  input.focus();
}

async function start() {
  setUnauthorizedHandler(() => signOut('Your token was refused: sign in again.'));
  document.getElementById('signout').addEventListener('click', () => signOut(''));
  // The skip link moves the focus; following its #main would change the
  // route, which lives in the fragment.
  document.querySelector('.skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    main.focus();
  });
  window.addEventListener('hashchange', () => {
    document.getElementById('status').textContent = '';
    if (whoami()) show({focus: true});
  });
  setInterval(tick, POLL_MS);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) tick(); });
  if (!token()) {
    login('');
    return;
  }
  try {
    signedIn(await api.whoami(token()));
    show({focus: false});
  } catch (e) {
    signOut(e.status === 401 ? 'Your token was refused: sign in again.' : e.message);
  }
}

start();
