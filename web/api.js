// The only way the app talks to the service: its public HTTP API (same origin, session cookie).

export class Problem extends Error {
  constructor(status, body) {
    super(body?.detail || body?.title || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

const listeners = { signedOut: [] };
export function onSignedOut(fn) { listeners.signedOut.push(fn); }

export function buildUrl(path, query) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === '' || (Array.isArray(value) && !value.length)) continue;
    if (Array.isArray(value)) value.forEach((v) => url.searchParams.append(key, v));
    else url.searchParams.set(key, String(value));
  }
  return url;
}

async function problemOf(response) {
  try { return await response.json(); } catch { return { title: response.statusText || 'Request failed' }; }
}

export async function api(path, { method = 'GET', json, body, query, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (json !== undefined) { headers['Content-Type'] = 'application/json'; body = JSON.stringify(json); }
  let response;
  try {
    response = await fetch(buildUrl(path, query), { method, headers, body, signal, credentials: 'same-origin' });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new Problem(0, { title: 'Network error', detail: 'The service could not be reached. Is it running?' });
  }
  if (response.status === 401 && path !== '/v1/session') listeners.signedOut.forEach((fn) => fn());
  if (!response.ok) throw new Problem(response.status, await problemOf(response));
  if (response.status === 204) return null;
  return (response.headers.get('content-type') || '').includes('json') ? response.json() : response;
}

/** A problem in words: its detail plus the first few per-field or per-file messages. */
export function describe(error) {
  if (!(error instanceof Problem)) return error?.message || String(error);
  const parts = [error.message];
  for (const item of (error.body.errors || []).slice(0, 3)) {
    const what = item.filename || item.field || item.photo_id || item.face_id;
    const text = item.detail || item.message || item.title;
    if (text && text !== error.message) parts.push(what ? `${what}: ${text}` : text);
  }
  return parts.join(' · ');
}

/** One file uploaded with progress (fetch has no upload progress); resolves to its result row. */
export function uploadFile(file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('POST', '/v1/photos');
    request.responseType = 'json';
    request.upload.onprogress = (event) => event.lengthComputable && onProgress(event.loaded / event.total);
    request.onerror = () => reject(new Problem(0, { title: 'Network error', detail: 'the upload was interrupted' }));
    request.onload = () => {
      const body = request.response || {};
      if (request.status === 401) listeners.signedOut.forEach((fn) => fn());
      if (request.status >= 200 && request.status < 300) {
        resolve({ ...body.results[0], job_id: body.job_id });
      } else if (body.errors?.length && body.errors[0].filename !== undefined) {
        resolve({ filename: file.name, status: 'rejected', error: body.errors[0] });
      } else reject(new Problem(request.status, body));
    };
    const form = new FormData();
    form.append('files', file, file.name);
    request.send(form);
  });
}

/** Every page of a listing, for small lists (people, albums). */
export async function all(path, query = {}) {
  const items = [];
  let cursor = null;
  do {
    const page = await api(path, { query: { ...query, limit: 200, cursor } });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

// One server-sent event stream for the whole app (a browser allows few connections per origin).
let source = null;
const eventHandlers = new Set();
export function onEvent(fn) {
  eventHandlers.add(fn);
  return () => eventHandlers.delete(fn);
}
export function openEvents() {
  if (source) return;
  source = new EventSource('/v1/events');
  for (const kind of ['job', 'photo.analysed']) {
    source.addEventListener(kind, (message) => {
      const data = JSON.parse(message.data);
      eventHandlers.forEach((fn) => fn(kind, data));
    });
  }
}
export function closeEvents() { source?.close(); source = null; }
