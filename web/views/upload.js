// Upload: drop or pick many files; each uploads with its own progress and outcome, then analysis
// progress follows live from the event stream.
import { api, describe, onEvent, uploadFile } from '../api.js';
import { h, link, pageHeader, percent, replace } from '../ui.js';

const CONCURRENT_UPLOADS = 3;

export async function render(main) {
  const input = h('input', { type: 'file', id: 'files', multiple: true, accept: 'image/*,.heic,.heif', class: 'visually-hidden' });
  const zone = h('label', { class: 'dropzone', for: 'files', tabindex: '0' },
    h('strong', {}, 'Drop photos here'), h('span', {}, 'or press to choose files (JPEG, PNG, WebP, TIFF, HEIC, GIF)'));
  const list = h('ol', { class: 'upload-list', 'aria-label': 'Uploads' });
  const summary = h('div', { class: 'upload-summary', role: 'status', 'aria-live': 'polite', id: 'upload-summary' });
  const analysis = h('div', { class: 'analysis', id: 'analysis-progress', role: 'status', 'aria-live': 'polite' });
  main.append(pageHeader('Upload'), input, zone, summary, analysis, list);

  const counts = { created: 0, duplicate: 0, rejected: 0 };
  const waiting = new Set();
  let analysed = 0;
  let failed = 0;
  const rows = new Map();
  const showAnalysis = () => {
    const total = waiting.size + analysed + failed;
    if (!total) return replace(analysis);
    const done = analysed + failed;
    replace(analysis,
      h('div', { class: 'progress-label' }, done === total
        ? `All ${total} new photo${total === 1 ? '' : 's'} analysed${failed ? ` (${failed} failed)` : ''}.`
        : `Analysing: ${done} of ${total} photos done`),
      h('progress', { max: total, value: done, 'aria-label': 'Analysis progress' }),
      done === total ? link('/', { class: 'button' }, 'See them in the library') : null);
    analysis.dataset.done = String(done === total);
  };
  // Analysis can finish before its upload's answer arrives: remember every event seen.
  const seen = new Map();
  const stop = onEvent((kind, data) => {
    if (kind !== 'photo.analysed') return;
    seen.set(data.photo_id, data);
    if (waiting.has(data.photo_id)) finished(data);
  });
  async function finished(data) {
    waiting.delete(data.photo_id);
    if (data.analysis_state === 'failed') failed += 1; else analysed += 1;
    const row = rows.get(data.photo_id);
    if (row) {
      row.querySelector('.outcome').textContent = data.analysis_state === 'failed' ? 'Analysis failed' : 'Analysed';
      try {
        const photo = await api(`/v1/photos/${data.photo_id}`);
        const tags = photo.tags.filter((t) => t.state !== 'rejected').slice(0, 5).map((t) => t.name);
        row.querySelector('.detail').textContent = [tags.join(', '), photo.faces_count ? `${photo.faces_count} face${photo.faces_count > 1 ? 's' : ''}` : ''].filter(Boolean).join(' · ');
      } catch { /* the row keeps its outcome */ }
    }
    showAnalysis();
  }

  async function uploadAll(files) {
    const queue = [...files].map((file) => {
      const bar = h('progress', { max: 1, value: 0, 'aria-label': `Upload of ${file.name}` });
      const row = h('li', { class: 'upload-row' }, h('span', { class: 'name' }, file.name), bar, h('span', { class: 'outcome' }, 'Waiting'), h('span', { class: 'detail' }));
      list.append(row);
      return { file, row, bar };
    });
    const worker = async () => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        const { file, row, bar } = item;
        const outcome = row.querySelector('.outcome');
        outcome.textContent = 'Uploading';
        try {
          const result = await uploadFile(file, (fraction) => { bar.value = fraction; outcome.textContent = `Uploading ${percent(fraction)}`; });
          bar.value = 1;
          counts[result.status] += 1;
          row.dataset.status = result.status;
          if (result.status === 'created') {
            outcome.textContent = 'Uploaded, analysing…';
            rows.set(result.photo.id, row);
            waiting.add(result.photo.id);
            const early = seen.get(result.photo.id);
            if (early) finished(early); else showAnalysis();
          } else if (result.status === 'duplicate') {
            outcome.textContent = 'Already in your library';
            row.querySelector('.detail').append(link(`/photo/${result.photo.id}`, {}, 'open it'));
          } else {
            outcome.textContent = 'Rejected';
            row.querySelector('.detail').textContent = result.error?.detail || result.error?.title || 'not accepted';
          }
        } catch (error) {
          counts.rejected += 1;
          row.dataset.status = 'rejected';
          outcome.textContent = 'Failed';
          row.querySelector('.detail').textContent = describe(error);
        }
        replace(summary, `${counts.created} uploaded · ${counts.duplicate} duplicate${counts.duplicate === 1 ? '' : 's'} · ${counts.rejected} rejected`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENT_UPLOADS }, worker));
    summary.dataset.done = 'true';
  }

  input.addEventListener('change', () => { if (input.files.length) uploadAll(input.files); input.value = ''; });
  zone.addEventListener('keydown', (event) => { if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); input.click(); } });
  zone.addEventListener('dragover', (event) => { event.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    if (event.dataTransfer.files.length) uploadAll(event.dataTransfer.files);
  });
  return stop;
}
