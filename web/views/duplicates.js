// Duplicates: groups of near-identical photos, best shot first; keep the best, trash the rest.
import { api } from '../api.js';
import { empty, h, loading, pageHeader, percent, photoTile, replace, showError, toast } from '../ui.js';

const BEST_BY = { quality_score: 'best quality score', resolution_sharpness: 'largest and sharpest' };

export async function render(main) {
  const body = h('div', {}, loading('Finding duplicates'));
  main.append(pageHeader('Duplicates'), body);
  async function draw() {
    const page = await api('/v1/duplicates', { query: { limit: 50 } });
    if (!page.items.length) {
      replace(body, empty('No duplicates', 'No two photos in your library are near-identical.'));
      return;
    }
    replace(body, page.items.map((group) => h('section', { class: 'dup-group card' },
      h('div', { class: 'row spread' },
        h('p', {}, `${group.size} near-identical photos (similarity ${percent(group.similarity)}). Best shot first: ${BEST_BY[group.best_by] || group.best_by}.`),
        h('button', { type: 'button', onclick: async () => {
          const rest = group.photos.filter((p) => p.id !== group.best_photo_id).map((p) => p.id);
          try { await api('/v1/photos/bulk', { method: 'POST', json: { photo_ids: rest, operations: { trash: true } } }); toast(`Kept the best, ${rest.length} moved to the trash`); await draw(); } catch (error) { showError(error); }
        } }, 'Keep the best, trash the rest')),
      h('div', { class: 'grid small' }, group.photos.map((photo) => photoTile(photo, { caption: photo.id === group.best_photo_id ? 'Best shot' : (photo.quality ? `quality ${Math.round(photo.quality.score)}` : null) }))))));
  }
  await draw();
}
