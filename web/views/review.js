// Review: the model's least confident tags and face names, one at a time: y (right), n (wrong), s (skip).
import { api } from '../api.js';
import { empty, h, pageHeader, percent, replace, showError } from '../ui.js';

export async function render(main, _params, query) {
  let mode = query.get('queue') === 'faces' ? 'faces' : 'tags';
  let queue = [];
  let more = false;
  let reviewed = 0;
  const card = h('div', { class: 'review-card card', tabindex: '-1', id: 'review-card' });
  const counter = h('p', { class: 'hint', role: 'status', id: 'review-count' });
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  main.append(pageHeader('Review'), h('p', { class: 'hint' }, 'The model’s least sure guesses first. Press y if it is right, n if it is wrong, s to skip.'), tabs, counter, card);

  async function load() {
    replace(tabs, ['tags', 'faces'].map((name) => h('button', {
      type: 'button', role: 'tab', 'aria-selected': String(mode === name), onclick: () => { mode = name; history.replaceState({}, '', `/review?queue=${name}`); load(); },
    }, name === 'tags' ? 'Tags' : 'Face names')));
    replace(card, h('p', { class: 'state loading' }, 'Loading…'));
    try {
      if (mode === 'tags') {
        const page = await api('/v1/review/tags', { query: { limit: 100 } });
        queue = page.items.map((item) => ({ kind: 'tag', ...item }));
        more = Boolean(page.next_cursor);
      } else {
        const page = await api('/v1/faces', { query: { unlabeled: true, order: 'confidence', limit: 100 } });
        more = Boolean(page.next_cursor);
        queue = page.items.filter((face) => face.person || face.suggestion).map((face) => ({ kind: 'face', face }));
      }
    } catch (error) { showError(error); queue = []; }
    show();
  }

  function show() {
    counter.textContent = `${reviewed} reviewed · ${queue.length}${more ? '+' : ''} to go`;
    const item = queue[0];
    // Decided items leave the server's queue, so its first page holds the next ones.
    if (!item && more) { load(); return; }
    if (!item) {
      replace(card, empty('Nothing to review', mode === 'tags' ? 'Every tag the model suggested has been checked.' : 'No face names to check right now.'));
      return;
    }
    if (item.kind === 'tag') {
      replace(card,
        h('img', { src: item.photo.thumbnail_url, alt: `Photo ${item.photo.filename}`, class: 'review-image', width: 256, height: 256 }),
        h('p', { class: 'question' }, 'Is there ', h('strong', { id: 'review-subject' }, item.tag.name), ' in this photo?'),
        h('p', { class: 'hint' }, `${item.tag.kind} · model ${percent(item.tag.confidence || 0)} sure`),
        buttons());
    } else {
      const name = item.face.person?.name || item.face.suggestion.person.name;
      const confidence = item.face.person_confidence ?? item.face.suggestion?.confidence ?? 0;
      replace(card,
        h('img', { src: item.face.thumbnail_url, alt: 'Face to check', class: 'review-image', width: 160, height: 160 }),
        h('p', { class: 'question' }, 'Is this ', h('strong', { id: 'review-subject' }, name), '?'),
        h('p', { class: 'hint' }, `model ${percent(confidence)} sure`),
        buttons());
    }
    card.focus();
  }

  const buttons = () => h('div', { class: 'row' },
    h('button', { type: 'button', onclick: () => decide('y') }, 'Yes (y)'),
    h('button', { type: 'button', class: 'secondary', onclick: () => decide('n') }, 'No (n)'),
    h('button', { type: 'button', class: 'link', onclick: () => decide('s') }, 'Skip (s)'));

  let busy = false;
  async function decide(answer) {
    const item = queue[0];
    if (!item || busy) return;
    busy = true;
    try {
      if (answer !== 's') {
        if (item.kind === 'tag') {
          await api(`/v1/photos/${item.photo.id}/tags/${encodeURIComponent(item.tag.name)}`, { method: 'PATCH', json: { state: answer === 'y' ? 'confirmed' : 'rejected' } });
        } else if (answer === 'y') {
          const personId = item.face.person?.id || item.face.suggestion.person.id;
          await api('/v1/faces/label', { method: 'POST', json: { face_ids: [item.face.id], person_id: personId } });
        } else {
          await api(`/v1/faces/${item.face.id}/person`, { method: 'DELETE' });
        }
        reviewed += 1;
      }
      queue.shift();
      show();
    } catch (error) { showError(error); } finally { busy = false; }
  }

  const onKey = (event) => {
    if (event.target.matches('input, textarea, select') || event.metaKey || event.ctrlKey || event.altKey) return;
    if (['y', 'n', 's'].includes(event.key)) { event.preventDefault(); decide(event.key); }
  };
  document.addEventListener('keydown', onKey);
  await load();
  return () => document.removeEventListener('keydown', onKey);
}
