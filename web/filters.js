// The library's filters: kept in the page URL, turned into the API's photo filters, shown as a sidebar
// built from GET /v1/facets (counts for what the other filters leave).
import { api } from './api.js';
import { h, monthName, replace, showError } from './ui.js';

const LIST_KEYS = ['people', 'tags'];
const SCALAR_KEYS = ['month', 'year', 'favorite', 'min_rating', 'camera', 'place', 'min_quality', 'album'];
// An area of the map: a circle, one filter made of three parameters.
const AREA_KEYS = ['lat', 'lon', 'radius_km'];

export function readFilters(params) {
  const state = {};
  for (const key of LIST_KEYS) state[key] = params.getAll(key);
  for (const key of SCALAR_KEYS) if (params.get(key)) state[key] = params.get(key);
  if (AREA_KEYS.every((key) => params.get(key))) for (const key of AREA_KEYS) state[key] = params.get(key);
  return state;
}

export function writeFilters(state, extra = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries({ ...extra, ...state })) {
    if (Array.isArray(value)) value.forEach((v) => params.append(key, v));
    else if (value !== undefined && value !== null && value !== '') params.set(key, value);
  }
  const query = params.toString();
  history.replaceState({}, '', `${location.pathname}${query ? `?${query}` : ''}`);
}

const pad = (n) => String(n).padStart(2, '0');

function range(state) {
  if (state.month) {
    const [year, month] = state.month.split('-').map(Number);
    const last = new Date(year, month, 0).getDate();
    return [`${year}-${pad(month)}-01T00:00:00`, `${year}-${pad(month)}-${pad(last)}T23:59:59`];
  }
  if (state.year) return [`${state.year}-01-01T00:00:00`, `${state.year}-12-31T23:59:59`];
  return [undefined, undefined];
}

/** The API's filter parameters for a filter state (photos, search, timeline, facets, exports). */
export function apiFilters(state) {
  const [takenAfter, takenBefore] = range(state);
  return {
    people: state.people?.length ? state.people : undefined,
    tags: state.tags?.length ? state.tags : undefined,
    taken_after: takenAfter,
    taken_before: takenBefore,
    favorite: state.favorite,
    min_rating: state.min_rating,
    camera: state.camera,
    place: state.place,
    min_quality: state.min_quality,
    album: state.album,
    lat: state.lat,
    lon: state.lon,
    radius_km: state.radius_km,
  };
}

/** The same filters as a JSON selection (`search` of exports, albums and bulk edits). */
export function searchSelection(state, q) {
  const selection = Object.fromEntries(Object.entries(apiFilters(state)).filter(([, v]) => v !== undefined));
  if (selection.favorite !== undefined) selection.favorite = selection.favorite === 'true';
  if (selection.min_rating !== undefined) selection.min_rating = Number(selection.min_rating);
  if (selection.min_quality !== undefined) selection.min_quality = Number(selection.min_quality);
  for (const key of AREA_KEYS) if (selection[key] !== undefined) selection[key] = Number(selection[key]);
  if (q) selection.q = q;
  return selection;
}

export function activeCount(state) {
  return LIST_KEYS.reduce((n, key) => n + (state[key]?.length || 0), 0) + SCALAR_KEYS.filter((k) => state[k]).length + (state.radius_km ? 1 : 0);
}

function toggleList(state, key, value) {
  const list = state[key] || [];
  return { ...state, [key]: list.includes(value) ? list.filter((v) => v !== value) : [...list, value] };
}

function chip(label, count, pressed, onClick, attrs = {}) {
  return h('button', { type: 'button', class: 'chip', 'aria-pressed': String(pressed), onclick: onClick, ...attrs },
    h('span', {}, label), count !== undefined ? h('span', { class: 'count' }, count) : null);
}

const TAG_KINDS = { category: 'Categories', object: 'Objects', label: 'Labels', user: 'Your tags' };

/** The filter sidebar; `onChange(newState)` is called when the user changes a filter. */
export function filterSidebar(state, onChange) {
  const panel = h('aside', { class: 'filters', 'aria-label': 'Filters' }, h('p', { class: 'state loading' }, 'Loading filters…'));
  api('/v1/facets', { query: { ...apiFilters(state), limit: 12 } }).then((facets) => {
    const sections = [];
    const section = (title, ...items) => items.flat().length && sections.push(h('section', {}, h('h2', {}, title), h('div', { class: 'chips' }, ...items)));
    section('People', facets.people.map((p) => chip(p.name, p.count, state.people.includes(p.value), () => onChange(toggleList(state, 'people', p.value)), { dataset: { filter: 'person' } })));
    for (const [kind, title] of Object.entries(TAG_KINDS)) {
      section(title, (facets.tags[kind] || []).map((t) => chip(t.value, t.count, state.tags.includes(t.value), () => onChange(toggleList(state, 'tags', t.value)))));
    }
    section('Years', facets.years.filter((y) => y.value).map((y) => chip(y.value, y.count, state.year === y.value, () => onChange({ ...state, year: state.year === y.value ? undefined : y.value, month: undefined }))));
    section('Places', facets.places.filter((p) => p.city || p.country).map((p) => {
      const name = p.city || p.region || p.country;
      return chip(name, p.count, state.place === name, () => onChange({ ...state, place: state.place === name ? undefined : name }));
    }));
    section('Cameras', facets.cameras.filter((c) => c.model || c.make).map((c) => {
      const name = c.model || c.make;
      return chip(name, c.count, state.camera === name, () => onChange({ ...state, camera: state.camera === name ? undefined : name }));
    }));
    const favourites = facets.favorite.find((f) => f.value)?.count || 0;
    section('Favourites & rating',
      chip('♥ Favourites', favourites, state.favorite === 'true', () => onChange({ ...state, favorite: state.favorite === 'true' ? undefined : 'true' })),
      [1, 2, 3, 4, 5].map((n) => chip(`${n}★ and up`, facets.rating.filter((r) => r.value >= n).reduce((s, r) => s + r.count, 0), state.min_rating === String(n),
        () => onChange({ ...state, min_rating: state.min_rating === String(n) ? undefined : String(n) }))));
    section('Quality', [['50', 'Good and better'], ['70', 'Best only']].map(([value, label]) =>
      chip(label, undefined, state.min_quality === value, () => onChange({ ...state, min_quality: state.min_quality === value ? undefined : value }))));
    const clear = activeCount(state) ? h('button', { type: 'button', class: 'link', onclick: () => onChange({ people: [], tags: [] }) }, 'Clear all filters') : null;
    replace(panel, h('div', { class: 'filters-head' }, h('strong', {}, `${facets.total} photo${facets.total === 1 ? '' : 's'}`), clear),
      state.month ? chip(`Month: ${monthName(state.month)} ✕`, undefined, true, () => onChange({ ...state, month: undefined })) : null,
      state.radius_km ? chip(`Within ${Number(state.radius_km).toFixed(0)} km of ${Number(state.lat).toFixed(2)}, ${Number(state.lon).toFixed(2)} ✕`, undefined, true,
        () => onChange({ ...state, lat: undefined, lon: undefined, radius_km: undefined }), { dataset: { filter: 'area' } }) : null,
      ...sections);
  }).catch((error) => { replace(panel); showError(error); });
  return panel;
}
