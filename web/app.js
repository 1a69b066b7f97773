// Shoebox web app: routing, sign-in and the shell. Every view talks to the service through api.js only.
import { api, closeEvents, describe, onEvent, onSignedOut, openEvents } from './api.js';
import { choosePhotoContext, h, navigate, replace, showError, toast } from './ui.js';

const SESSION_FLAG = 'shoebox.session';

const routes = [
  [/^\/$/, () => import('./views/library.js')],
  [/^\/upload$/, () => import('./views/upload.js')],
  [/^\/search$/, () => import('./views/search.js')],
  [/^\/people$/, () => import('./views/people.js')],
  [/^\/people\/([\w-]+)$/, () => import('./views/person.js')],
  [/^\/review$/, () => import('./views/review.js')],
  [/^\/photo\/([\w-]+)$/, () => import('./views/photo.js')],
  [/^\/albums$/, () => import('./views/albums.js')],
  [/^\/albums\/([\w-]+)$/, () => import('./views/album.js')],
  [/^\/duplicates$/, () => import('./views/duplicates.js')],
  [/^\/exports$/, () => import('./views/exports.js')],
  [/^\/trash$/, () => import('./views/trash.js')],
  [/^\/places$/, () => import('./views/places.js')],
];

const main = document.getElementById('main');
const topbar = document.querySelector('.topbar');
let cleanup = null;

function signedIn() {
  const expires = localStorage.getItem(SESSION_FLAG);
  return expires && new Date(expires) > new Date();
}

function signOutLocally() {
  localStorage.removeItem(SESSION_FLAG);
  closeEvents();
  topbar.hidden = true;
}

onSignedOut(() => {
  if (!signedIn()) return;
  signOutLocally();
  toast('Your session ended; please sign in again.', 'error');
  route();
});

async function route() {
  cleanup?.();
  cleanup = null;
  const path = location.pathname;
  if (!signedIn()) {
    topbar.hidden = true;
    renderSignIn();
    return;
  }
  topbar.hidden = false;
  openEvents();
  for (const link of document.querySelectorAll('#nav a')) {
    const href = link.getAttribute('href');
    const current = href === '/' ? path === '/' || path.startsWith('/photo/') : path.startsWith(href);
    if (current) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
  }
  document.getElementById('nav').classList.remove('open');
  const match = routes.find(([pattern]) => pattern.test(path));
  if (!match) {
    replace(main, h('div', { class: 'state empty' }, h('h1', {}, 'Page not found'), h('a', { href: '/', 'data-link': '' }, 'Back to the library')));
    return;
  }
  const params = path.match(match[0]).slice(1);
  const view = await match[1]();
  main.replaceChildren();
  main.dataset.view = path.split('/')[1] || 'library';
  try {
    cleanup = (await view.render(main, params, new URLSearchParams(location.search))) || null;
  } catch (error) {
    showError(error);
  }
  const heading = main.querySelector('h1');
  if (heading) document.title = `${heading.textContent} · Shoebox`;
}

async function startSession(apiKey) {
  const session = await api('/v1/session', { method: 'POST', json: { api_key: apiKey } });
  localStorage.setItem(SESSION_FLAG, session.expires_at);
}

async function renderSignIn() {
  document.title = 'Sign in · Shoebox';
  const card = h('section', { class: 'signin card', 'aria-labelledby': 'signin-title' });
  replace(main, h('div', { class: 'signin-wrap' }, card));
  main.dataset.view = 'signin';
  let setup = { owner_needed: false };
  try { setup = await api('/v1/setup'); } catch (error) { showError(error); }
  const message = h('p', { class: 'form-error', role: 'alert' });
  if (setup.owner_needed) {
    const name = h('input', { id: 'owner-name', name: 'name', value: 'default', required: true, autocomplete: 'username' });
    replace(card,
      h('h1', { id: 'signin-title' }, 'Welcome to Shoebox'),
      h('p', {}, 'This Shoebox has no account yet. Create the first one; you get an API key to sign in with and to use the API.'),
      h('form', {
        onsubmit: async (event) => {
          event.preventDefault();
          try {
            const first = await api('/v1/setup', { method: 'POST', json: { name: name.value.trim() } });
            showNewKey(card, first.api_key);
          } catch (error) { message.textContent = describe(error); }
        },
      }, h('label', { for: 'owner-name' }, 'Account name'), name, message, h('button', { type: 'submit' }, 'Create account')));
    name.focus();
    return;
  }
  const key = h('input', { id: 'api-key', name: 'api_key', type: 'password', required: true, autocomplete: 'current-password', spellcheck: false });
  replace(card,
    h('h1', { id: 'signin-title' }, 'Sign in to Shoebox'),
    h('p', {}, 'Use an API key of your account: the SHOEBOX_BOOTSTRAP_KEY the service was started with, or one made with shoebox-admin key-create.'),
    h('form', {
      onsubmit: async (event) => {
        event.preventDefault();
        message.textContent = '';
        try {
          await startSession(key.value.trim());
          route();
        } catch (error) { message.textContent = describe(error); }
      },
    }, h('label', { for: 'api-key' }, 'API key'), key, message, h('button', { type: 'submit' }, 'Sign in')));
  key.focus();
}

function showNewKey(card, apiKey) {
  const output = h('output', { class: 'api-key', id: 'new-key' }, apiKey);
  replace(card,
    h('h1', { id: 'signin-title' }, 'Your API key'),
    h('p', {}, 'Keep it somewhere safe: it is shown only this once. You sign in with it, and scripts use it as `Authorization: Bearer`.'),
    output,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', onclick: async () => { await navigator.clipboard?.writeText(apiKey); toast('Copied'); } }, 'Copy'),
      h('button', { type: 'button', onclick: async () => { await startSession(apiKey); route(); } }, 'Continue')));
}

// Live analysis activity in the header, from the event stream.
const activity = document.getElementById('activity');
const runningJobs = new Map();
onEvent((kind, data) => {
  if (kind !== 'job') return;
  if (data.state === 'queued' || data.state === 'running') runningJobs.set(data.id, data); else runningJobs.delete(data.id);
  const jobs = [...runningJobs.values()];
  const total = jobs.reduce((sum, job) => sum + job.total, 0);
  const done = jobs.reduce((sum, job) => sum + job.done + job.failed, 0);
  replace(activity, jobs.length ? [h('span', { class: 'spinner', 'aria-hidden': 'true' }), ` Working: ${done} of ${total}`] : null);
});

document.addEventListener('click', (event) => {
  const anchor = event.target.closest('a[data-link]');
  if (!anchor || event.metaKey || event.ctrlKey || event.shiftKey || anchor.target) return;
  event.preventDefault();
  if (anchor.classList.contains('tile-link')) choosePhotoContext(anchor);
  navigate(anchor.getAttribute('href'));
});
window.addEventListener('popstate', route);
window.addEventListener('shoebox:navigate', () => { route(); main.focus({ preventScroll: true }); window.scrollTo(0, 0); });
document.getElementById('sign-out').addEventListener('click', async () => {
  try { await api('/v1/session', { method: 'DELETE' }); } catch (error) { showError(error); }
  signOutLocally();
  history.pushState({}, '', '/');
  route();
});
document.querySelector('.menu-toggle').addEventListener('click', (event) => {
  const open = document.getElementById('nav').classList.toggle('open');
  event.currentTarget.setAttribute('aria-expanded', String(open));
});
route();
