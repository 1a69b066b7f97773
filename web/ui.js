// Small DOM helpers shared by the views: element builder, toasts, states, photo tiles.
import { describe } from './api.js';

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') element.addEventListener(key.slice(2), value);
    else if (key === 'class') element.className = value;
    else if (key === 'dataset') Object.assign(element.dataset, value);
    else if (key in element && typeof value !== 'string') element[key] = value;
    else element.setAttribute(key, value === true ? '' : value);
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

export function toast(message, kind = 'info') {
  const item = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : undefined }, message);
  document.getElementById('toasts').append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 8000 : 4000);
}

export function showError(error) {
  if (error?.name === 'AbortError') return;
  toast(describe(error), 'error');
}

export const loading = (what = 'Loading') => h('p', { class: 'state loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), `${what}…`);
export const empty = (title, hint, ...actions) =>
  h('div', { class: 'state empty' }, h('h2', {}, title), hint ? h('p', {}, hint) : null, ...actions);
export const errorState = (error) => h('div', { class: 'state error', role: 'alert' }, h('h2', {}, 'Something went wrong'), h('p', {}, describe(error)));

export function pageHeader(title, ...actions) {
  return h('div', { class: 'page-head' }, h('h1', {}, title), h('div', { class: 'actions' }, ...actions));
}

export function navigate(path, { replaceEntry = false } = {}) {
  if (replaceEntry) history.replaceState({}, '', path);
  else { navigate.depth += 1; history.pushState({}, '', path); }
  window.dispatchEvent(new Event('shoebox:navigate'));
}

// The list a photo was opened from (library, search, album, person, place), kept in memory so the
// photo page can step to the previous and next photo of it, loading the list's next page when needed.
let photoContext = null;
export function photoListContext() { return photoContext; }
/** Called for every press on a photo tile: the grid it sits in becomes the context, else none. */
export function choosePhotoContext(anchor) {
  const owner = anchor.closest('.paged');
  photoContext = owner?.photoContext || null;
}

function listContext(items, idOf, load, isDone) {
  return {
    ids: () => items.map(idOf),
    more: load,
    done: isDone,
    /** A photo left the list (moved to the trash from its page). */
    drop: (id) => { const index = items.findIndex((item) => idOf(item) === id); if (index >= 0) items.splice(index, 1); },
  };
}

// How many in-app steps were taken: "Back" leaves the app only when there is nothing to go back to.
navigate.depth = 0;
export function goBack(fallback = '/') {
  if (navigate.depth > 0) { navigate.depth -= 1; history.back(); } else navigate(fallback);
}

export function link(href, attrs, ...children) {
  return h('a', { href, 'data-link': '', ...attrs }, ...children);
}

export function formatDate(value, withTime = false) {
  if (!value) return 'Undated';
  const date = new Date(value.length <= 19 ? value : value.slice(0, 19));
  if (Number.isNaN(date.getTime())) return value;
  return date.toLocaleString(undefined, withTime
    ? { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }
    : { year: 'numeric', month: 'short', day: 'numeric' });
}

export function monthName(bucket) {
  if (!bucket) return 'Undated';
  const [year, month] = bucket.split('-').map(Number);
  return new Date(year, (month || 1) - 1, 1).toLocaleString(undefined, month ? { month: 'short', year: 'numeric' } : { year: 'numeric' });
}

export function photoAlt(photo) {
  const tags = (photo.tags || []).filter((t) => t.state !== 'rejected' && (t.confidence ?? 1) >= 0.4)
    .slice(0, 4).map((t) => t.name);
  const when = photo.taken_at ? `, ${formatDate(photo.taken_at)}` : '';
  return tags.length ? `Photo of ${tags.join(', ')}${when}` : `${photo.filename}${when}`;
}

/** A fixed-aspect tile: its box never changes size while the thumbnail loads. */
export function photoTile(photo, { selectable = null, caption = null } = {}) {
  const tile = h('figure', { class: 'tile', dataset: { photoId: photo.id } },
    link(`/photo/${photo.id}`, { class: 'tile-link', 'aria-label': photoAlt(photo) },
      h('img', { src: photo.thumbnail_url, alt: photoAlt(photo), loading: 'lazy', decoding: 'async', width: 256, height: 256 })),
    photo.favorite ? h('span', { class: 'badge fav', title: 'Favourite' }, '♥') : null,
    photo.rating ? h('span', { class: 'badge rating', title: `${photo.rating} stars` }, `${photo.rating}★`) : null,
    caption ? h('figcaption', {}, caption) : null);
  if (selectable) {
    const box = h('input', { type: 'checkbox', class: 'select', 'aria-label': `Select ${photo.filename}`, checked: selectable.has(photo.id) });
    box.addEventListener('change', () => {
      if (box.checked) selectable.add(photo.id); else selectable.delete(photo.id);
      tile.classList.toggle('selected', box.checked);
      tile.dispatchEvent(new CustomEvent('selection', { bubbles: true }));
    });
    tile.classList.toggle('selected', box.checked);
    tile.prepend(box);
  }
  return tile;
}

/** A paged grid that loads the next page as its end scrolls into view. Rendering of far-away rows is
 * skipped by the browser (content-visibility), so tens of thousands of tiles stay smooth. */
export function pagedGrid(fetchPage, renderItem, { emptyState, photoId = (item) => item.id } = {}) {
  const grid = h('div', { class: 'grid', role: 'list' });
  const sentinel = h('div', { class: 'sentinel' });
  const status = h('div', { class: 'grid-status' }, loading('Loading photos'));
  const wrapper = h('div', { class: 'paged' }, grid, sentinel, status);
  const items = [];
  let cursor = null;
  let busy = null;
  let done = false;
  let count = 0;
  let stopped = false;
  function more() {
    if (done) return Promise.resolve();
    busy ||= load().finally(() => { busy = null; if (!done && !stopped && sentinel.getBoundingClientRect().top < innerHeight * 2) more(); });
    return busy;
  }
  async function load() {
    try {
      const page = await fetchPage(cursor);
      items.push(...page.items);
      for (const item of page.items) {
        const node = renderItem(item);
        node.setAttribute('role', 'listitem');
        grid.append(node);
      }
      count += page.items.length;
      cursor = page.next_cursor;
      done = !cursor;
      replace(status, done && !count ? (emptyState || empty('Nothing here yet')) : null);
      wrapper.dispatchEvent(new CustomEvent('loaded', { detail: { count, done } }));
      wrapper.dataset.state = done ? 'complete' : 'more';
    } catch (error) {
      replace(status, errorState(error));
      done = true;
    }
  }
  const observer = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && more(), { rootMargin: '800px' });
  observer.observe(sentinel);
  more();
  wrapper.photoContext = listContext(items, photoId, more, () => done);
  wrapper.stop = () => { stopped = true; observer.disconnect(); };
  return wrapper;
}

export function stars(value, onChange, label = 'Rating') {
  const group = h('div', { class: 'stars', role: 'radiogroup', 'aria-label': label });
  const render = (current) => replace(group, ...[1, 2, 3, 4, 5].map((n) => h('button', {
    type: 'button', role: 'radio', 'aria-checked': String(n === current), 'aria-label': `${n} star${n > 1 ? 's' : ''}`,
    class: n <= current ? 'on' : '', onclick: async () => { const next = n === current ? 0 : n; render(next); await onChange(next); },
  }, '★')));
  render(value);
  return group;
}

export function percent(value) { return `${Math.round(value * 100)}%`; }

export function confirmDialog(message, confirmLabel = 'Confirm') {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'dialog' },
      h('form', { method: 'dialog' }, h('p', {}, message),
        h('div', { class: 'actions' },
          h('button', { value: 'cancel', class: 'secondary' }, 'Cancel'),
          h('button', { value: 'ok', class: 'danger' }, confirmLabel))));
    dialog.addEventListener('close', () => { resolve(dialog.returnValue === 'ok'); dialog.remove(); });
    document.body.append(dialog);
    dialog.showModal();
  });
}

export function promptDialog(message, { label = 'Name', value = '', confirmLabel = 'Save' } = {}) {
  return new Promise((resolve) => {
    const input = h('input', { name: 'value', required: true, value, autocomplete: 'off' });
    const dialog = h('dialog', { class: 'dialog' },
      h('form', { method: 'dialog' }, h('p', {}, message), h('label', {}, label, input),
        h('div', { class: 'actions' },
          h('button', { value: 'cancel', class: 'secondary', formnovalidate: true }, 'Cancel'),
          h('button', { value: 'ok' }, confirmLabel))));
    dialog.addEventListener('close', () => { resolve(dialog.returnValue === 'ok' ? input.value.trim() : null); dialog.remove(); });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** A windowed grid for very long lists (the library): items load page by page as the end comes near,
 * and only the rows on screen (plus a margin) exist in the page, so tens of thousands of photos scroll
 * as smoothly as a hundred. Tiles are squares; the grid's height is known from the loaded rows. */
export function virtualGrid(fetchPage, renderItem, { emptyState, minTile = 168, gap = 8, overscanRows = 4, photoId = (item) => item.id } = {}) {
  const grid = h('div', { class: 'grid virtual', role: 'list' });
  const status = h('div', { class: 'grid-status' }, loading('Loading photos'));
  const wrapper = h('div', { class: 'paged' }, grid, status);
  const items = [];
  const nodes = new Map();
  let cursor = null;
  let done = false;
  let busy = null;
  let stopped = false;
  let layout = { columns: 1, tile: minTile };
  let frame = 0;

  function measure() {
    const width = grid.clientWidth || minTile;
    const tileMin = innerWidth <= 800 ? 104 : minTile;
    const columns = Math.max(1, Math.floor((width + gap) / (tileMin + gap)));
    layout = { columns, tile: (width - gap * (columns - 1)) / columns };
  }

  function draw() {
    frame = 0;
    if (stopped) return;
    measure();
    const { columns, tile } = layout;
    const rowHeight = tile + gap;
    const rows = Math.ceil(items.length / columns);
    grid.style.height = `${Math.max(0, rows * rowHeight - gap)}px`;
    const top = grid.getBoundingClientRect().top;
    const firstRow = Math.max(0, Math.floor(-top / rowHeight) - overscanRows);
    const lastRow = Math.min(rows - 1, Math.ceil((innerHeight - top) / rowHeight) + overscanRows);
    const wanted = new Set();
    for (let index = firstRow * columns; index <= Math.min(items.length - 1, (lastRow + 1) * columns - 1); index += 1) {
      const item = items[index];
      wanted.add(item.id);
      let node = nodes.get(item.id);
      if (!node) {
        node = renderItem(item);
        node.setAttribute('role', 'listitem');
        node.setAttribute('aria-posinset', String(index + 1));
        nodes.set(item.id, node);
        grid.append(node);
      }
      Object.assign(node.style, {
        position: 'absolute', width: `${tile}px`, height: `${tile}px`,
        transform: `translate(${(index % columns) * (tile + gap)}px, ${Math.floor(index / columns) * rowHeight}px)`,
      });
    }
    for (const [id, node] of nodes) {
      // The focused tile stays, so the keyboard never loses its place.
      if (!wanted.has(id) && !node.contains(document.activeElement)) { node.remove(); nodes.delete(id); }
    }
    if (!done && lastRow >= rows - overscanRows - 1) more();
  }

  const schedule = () => { if (!frame) frame = requestAnimationFrame(draw); };

  // A promise while a page is on its way: the photo page may ask for the next page after the grid
  // itself stopped (its view was left).
  function more() {
    if (done) return Promise.resolve();
    busy ||= load().finally(() => { busy = null; schedule(); });
    return busy;
  }
  async function load() {
    try {
      const page = await fetchPage(cursor);
      items.push(...page.items);
      cursor = page.next_cursor;
      done = !cursor;
      replace(status, done && !items.length ? (emptyState || empty('Nothing here yet')) : done ? null : loading('Loading more'));
      wrapper.dataset.state = done ? 'complete' : 'more';
      wrapper.dispatchEvent(new CustomEvent('loaded', { detail: { count: items.length, done } }));
    } catch (error) {
      replace(status, errorState(error));
      done = true;
    }
  }

  addEventListener('scroll', schedule, { passive: true });
  addEventListener('resize', schedule);
  const resizeObserver = new ResizeObserver(schedule);
  resizeObserver.observe(grid);
  more();
  wrapper.photoContext = listContext(items, photoId, more, () => done);
  wrapper.stop = () => {
    stopped = true;
    removeEventListener('scroll', schedule);
    removeEventListener('resize', schedule);
    resizeObserver.disconnect();
  };
  return wrapper;
}
