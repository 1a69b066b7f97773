// One photo: the image large with named face boxes, tags to confirm/reject/add, quality, rotation
// suggestion, the low-light view, facts, similar photos, favourite and rating.
import { all, api, describe } from '../api.js';
import { reason } from './search.js';
import { confirmDialog, formatDate, goBack, h, loading, navigate, percent, photoAlt, photoListContext, photoTile, replace, showError, stars, toast } from '../ui.js';

const KIND_NAMES = { object: 'Object', label: 'Label', category: 'Category', user: 'Your tag' };
const ISSUE_WORDS = {
  blurry: 'out of focus', motion_blur: 'motion blur', dark: 'too dark', overexposed: 'overexposed', noisy: 'noisy',
  low_resolution: 'low resolution', heavily_compressed: 'heavily compressed',
};

// Which step button had the focus when the last photo was left, so it keeps it on the next one.
let refocus = null;

export async function render(main, [photoId]) {
  main.append(loading('Loading photo'));
  let photo = await api(`/v1/photos/${photoId}`);
  let faces = (await api(`/v1/photos/${photoId}/faces`)).items;
  let people = await all('/v1/people');
  let objectUrl = null;
  let enhanced = false;
  const image = h('img', { class: 'photo-image', alt: photoAlt(photo) });
  const boxes = h('div', { class: 'face-boxes' });
  const stage = h('div', { class: 'stage' }, image, boxes);
  const facePanel = h('div', { class: 'face-panel', id: 'face-panel' });
  const side = h('div', { class: 'photo-side' });
  const similar = h('section', { class: 'similar', 'aria-labelledby': 'similar-title' });

  async function loadImage() {
    // Fetched (revalidated by ETag) rather than set as src: a rotation changes the bytes behind one URL.
    const url = enhanced ? photo.enhanced_url : `/v1/photos/${photo.id}/thumbnail?size=1024`;
    try {
      const response = await fetch(url, { cache: 'no-cache', credentials: 'same-origin' });
      if (!response.ok) throw new Error(`the image did not load (${response.status})`);
      const next = URL.createObjectURL(await response.blob());
      image.src = next;
      if (objectUrl) URL.revokeObjectURL(objectUrl);
      objectUrl = next;
    } catch (error) { showError(error); }
  }

  async function patch(body, message) {
    try {
      photo = await api(`/v1/photos/${photo.id}`, { method: 'PATCH', json: body });
      if (message) toast(message);
      return true;
    } catch (error) { showError(error); return false; }
  }

  function drawFaces() {
    replace(boxes, faces.map((face, index) => {
      const [x, y, w, hgt] = face.bbox;
      const name = face.person?.name || (face.suggestion ? `${face.suggestion.person.name}?` : 'Who is this?');
      const button = h('button', {
        type: 'button', class: `face-box ${face.person ? 'named' : face.suggestion ? 'suggested' : 'unknown'}`,
        'aria-label': `Face ${index + 1}: ${face.person ? face.person.name : face.suggestion ? `maybe ${face.suggestion.person.name}` : 'unnamed'}`,
        dataset: { faceId: face.id }, onclick: () => openFace(face),
      }, h('span', { class: 'face-name' }, name));
      Object.assign(button.style, { left: `${x * 100}%`, top: `${y * 100}%`, width: `${w * 100}%`, height: `${hgt * 100}%` });
      return button;
    }));
  }

  async function reloadFaces() {
    faces = (await api(`/v1/photos/${photo.id}/faces`)).items;
    people = await all('/v1/people');
    drawFaces();
  }

  function openFace(face) {
    const input = h('input', { id: 'face-name', list: 'people-names', autocomplete: 'off', required: true, value: face.person?.name || '' });
    const label = async (body, message) => {
      try {
        await api('/v1/faces/label', { method: 'POST', json: { face_ids: [face.id], ...body } });
        toast(message);
        replace(facePanel);
        await reloadFaces();
      } catch (error) { showError(error); }
    };
    const suggestion = face.suggestion;
    replace(facePanel,
      h('img', { src: face.thumbnail_url, alt: `Face ${face.person ? `of ${face.person.name}` : 'without a name'}`, width: 96, height: 96, class: 'face-thumb' }),
      h('form', {
        class: 'face-form',
        onsubmit: (event) => {
          event.preventDefault();
          const name = input.value.trim();
          const known = people.find((p) => p.name.toLowerCase() === name.toLowerCase());
          label(known ? { person_id: known.id } : { name }, `Named ${name}`);
        },
      },
      h('label', { for: 'face-name' }, face.person ? `This is ${face.person.name}${face.person_source === 'model' ? ` (model, ${percent(face.person_confidence || 0)})` : ''}. Rename:` : 'Who is this?'),
      h('datalist', { id: 'people-names' }, people.map((p) => h('option', { value: p.name }))),
      h('div', { class: 'row' }, input, h('button', { type: 'submit' }, 'Save name'))),
      suggestion ? h('div', { class: 'row' }, `Is this ${suggestion.person.name}? (${percent(suggestion.confidence)})`,
        h('button', { type: 'button', onclick: () => label({ person_id: suggestion.person.id }, `Confirmed ${suggestion.person.name}`) }, 'Yes'),
        h('button', { type: 'button', class: 'secondary', onclick: () => unassign(face) }, 'No')) : null,
      face.person ? h('button', { type: 'button', class: 'secondary', onclick: () => unassign(face) }, `Not ${face.person.name}`) : null,
      face.recognisable === false ? h('p', { class: 'hint' }, 'This face is small or blurred: it is not used to teach the model.') : null);
    input.focus();
  }

  async function unassign(face) {
    try {
      await api(`/v1/faces/${face.id}/person`, { method: 'DELETE' });
      replace(facePanel);
      await reloadFaces();
    } catch (error) { showError(error); }
  }

  async function setTag(tag, state) {
    try {
      photo = await api(`/v1/photos/${photo.id}/tags/${encodeURIComponent(tag.name)}`, { method: 'PATCH', json: { state } });
      drawSide();
    } catch (error) { showError(error); }
  }

  function tagList() {
    const visible = photo.tags.filter((t) => t.state !== 'rejected');
    const rejected = photo.tags.filter((t) => t.state === 'rejected');
    const input = h('input', { id: 'new-tag', autocomplete: 'off', required: true, 'aria-label': 'New tag' });
    return h('section', { 'aria-labelledby': 'tags-title', class: 'tags' }, h('h2', { id: 'tags-title' }, 'Tags'),
      visible.length ? h('ul', { class: 'tag-list' }, visible.map((tag) => h('li', { class: `tag ${tag.state}`, dataset: { tag: tag.name } },
        h('span', { class: 'tag-name' }, tag.name),
        h('span', { class: 'tag-meta' }, `${KIND_NAMES[tag.kind] || tag.kind}${tag.confidence != null && tag.source === 'model' ? ` · ${percent(tag.confidence)}` : ''}${tag.state === 'confirmed' ? ' · confirmed' : ''}`),
        tag.source === 'model' && tag.state !== 'confirmed' ? h('button', { type: 'button', class: 'icon', 'aria-label': `Confirm ${tag.name}`, onclick: () => setTag(tag, 'confirmed') }, '✓') : null,
        h('button', {
          type: 'button', class: 'icon', 'aria-label': tag.source === 'user' ? `Remove ${tag.name}` : `Reject ${tag.name}`,
          onclick: async () => {
            if (tag.source === 'user') {
              try { await api(`/v1/photos/${photo.id}/tags/${encodeURIComponent(tag.name)}`, { method: 'DELETE' }); photo = await api(`/v1/photos/${photo.id}`); drawSide(); } catch (error) { showError(error); }
            } else setTag(tag, 'rejected');
          },
        }, '✕')))) : h('p', { class: 'hint' }, photo.analysis_state === 'done' ? 'No tags.' : 'Tags appear when analysis finishes.'),
      rejected.length ? h('p', { class: 'hint' }, `Rejected: ${rejected.map((t) => t.name).join(', ')}`) : null,
      h('form', {
        class: 'row', onsubmit: async (event) => {
          event.preventDefault();
          try { photo = await api(`/v1/photos/${photo.id}/tags`, { method: 'POST', json: { name: input.value } }); drawSide(); document.getElementById('new-tag')?.focus(); } catch (error) { showError(error); }
        },
      }, input, h('button', { type: 'submit' }, 'Add tag')));
  }

  function facts() {
    const rows = [
      ['Taken', photo.taken_at ? formatDate(photo.taken_at, true) : 'Unknown'],
      ['Camera', [photo.camera?.make, photo.camera?.model].filter(Boolean).join(' ') || null],
      ['Place', photo.place ? [photo.place.city, photo.place.region, photo.place.country].filter(Boolean).join(', ') : null],
      ['GPS', photo.gps ? `${photo.gps.lat.toFixed(5)}, ${photo.gps.lon.toFixed(5)}` : null],
      ['Size', `${photo.width} × ${photo.height} px · ${(photo.size_bytes / 1048576).toFixed(1)} MB`],
      ['File', photo.filename],
      ['Uploaded', formatDate(photo.uploaded_at, true)],
    ].filter(([, value]) => value);
    return h('section', { 'aria-labelledby': 'facts-title' }, h('h2', { id: 'facts-title' }, 'Details'),
      h('dl', { class: 'facts' }, rows.map(([key, value]) => [h('dt', {}, key), h('dd', {}, value)])));
  }

  function quality() {
    if (!photo.quality) return null;
    const issues = photo.quality.issues.map((issue) => ISSUE_WORDS[issue] || issue.replaceAll('_', ' '));
    return h('section', { 'aria-labelledby': 'quality-title', class: 'quality' }, h('h2', { id: 'quality-title' }, 'Quality'),
      h('p', {}, h('meter', { min: 0, max: 100, low: 40, high: 70, optimum: 100, value: photo.quality.score, 'aria-label': 'Quality score' }),
        ` ${Math.round(photo.quality.score)} / 100`),
      h('p', { class: 'hint' }, issues.length ? `Why: ${issues.join(', ')}.` : 'No problems found: sharp, well exposed, clean.'));
  }

  function rotationHint() {
    const suggested = photo.suggested_rotation;
    if (!suggested || photo.rotation) return null;
    return h('div', { class: 'notice', role: 'note' }, `This photo looks sideways; turning it ${suggested}° clockwise would make it upright${photo.suggested_rotation_confidence ? ` (${percent(photo.suggested_rotation_confidence)} sure)` : ''}.`,
      h('button', { type: 'button', onclick: async () => { if (await patch({ rotation: suggested }, 'Rotated')) { await loadImage(); await reloadFaces(); drawSide(); } } }, 'Apply rotation'));
  }

  function drawSide() {
    replace(side,
      h('div', { class: 'row toolbar' },
        h('button', { type: 'button', class: 'fav', 'aria-pressed': String(photo.favorite), onclick: async () => { if (await patch({ favorite: !photo.favorite })) drawSide(); } }, photo.favorite ? '♥ Favourite' : '♡ Favourite'),
        stars(photo.rating, (rating) => patch({ rating }, rating ? `Rated ${rating}★` : 'Rating cleared'))),
      h('p', { class: 'hint keys' }, `Keys: f favourite · 0–5 rating${position >= 0 ? ' · ← → previous, next' : ''} · Esc closes the face panel`),
      rotationHint(), tagList(), quality(), facts());
  }

  const turn = async (by) => { if (await patch({ rotation: (photo.rotation + by + 360) % 360 })) { await loadImage(); await reloadFaces(); } };
  const enhanceButton = h('button', {
    type: 'button', class: 'secondary', 'aria-pressed': 'false',
    onclick: async () => { enhanced = !enhanced; enhanceButton.setAttribute('aria-pressed', String(enhanced)); boxes.hidden = enhanced; await loadImage(); },
  }, 'Low-light view');
  const trashButton = h('button', {
    type: 'button', class: 'danger', onclick: async () => {
      if (!(await confirmDialog('Move this photo to the trash? You can restore it from the trash.', 'Move to trash'))) return;
      try {
        await api(`/v1/photos/${photo.id}`, { method: 'DELETE' });
        toast('Moved to the trash');
        // Opened from a list: on to the next photo of it (or the one before), else the library.
        if (position >= 0) {
          context.drop(photo.id);
          if (position >= context.ids().length && !context.done()) await context.more();
          const ids = context.ids();
          const next = ids[position] || ids[position - 1];
          if (next) { navigate(`/photo/${next}`, { replaceEntry: true }); return; }
        }
        navigate('/');
      } catch (error) { showError(error); }
    },
  }, 'Move to trash');

  // Previous / next through the list the photo was opened from (buttons, and the arrow keys).
  const context = photoListContext();
  const position = context ? context.ids().indexOf(photo.id) : -1;
  const prevButton = h('button', { type: 'button', class: 'secondary', id: 'prev-photo', 'aria-label': 'Previous photo', 'aria-keyshortcuts': 'ArrowLeft', onclick: () => step(-1) }, '‹ Previous');
  const nextButton = h('button', { type: 'button', class: 'secondary', id: 'next-photo', 'aria-label': 'Next photo', 'aria-keyshortcuts': 'ArrowRight', onclick: () => step(1) }, 'Next ›');
  const where = h('span', { class: 'hint', id: 'photo-position', 'aria-live': 'polite' });
  const stepper = position >= 0 ? h('div', { class: 'stepper row tight' }, prevButton, where, nextButton) : null;
  function showPosition() {
    if (position < 0) return;
    const count = context.ids().length;
    prevButton.disabled = position === 0;
    nextButton.disabled = position >= count - 1 && context.done();
    where.textContent = `${position + 1} of ${count}${context.done() ? '' : '+'}`;
  }
  async function step(delta) {
    if (position < 0) return;
    let ids = context.ids();
    const target = position + delta;
    if (target >= ids.length && !context.done()) {
      await context.more();
      ids = context.ids();
    }
    if (target < 0 || target >= ids.length) return;
    refocus = document.activeElement === prevButton || document.activeElement === nextButton ? document.activeElement.id : null;
    // The list stays one step of history: Back returns to it, not through every photo seen.
    navigate(`/photo/${ids[target]}`, { replaceEntry: true });
  }
  showPosition();
  // The list's next page is asked for before the end is reached.
  if (position >= 0 && position >= context.ids().length - 3 && !context.done()) context.more().then(showPosition).catch(showError);

  replace(main,
    h('div', { class: 'page-head' }, h('h1', { class: 'filename' }, photo.filename),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', onclick: () => goBack() }, '← Back'),
        stepper,
        h('button', { type: 'button', class: 'secondary', 'aria-label': 'Rotate left', onclick: () => turn(-90) }, '↺'),
        h('button', { type: 'button', class: 'secondary', 'aria-label': 'Rotate right', onclick: () => turn(90) }, '↻'),
        enhanceButton,
        h('a', { class: 'button secondary', href: photo.original_url, download: photo.filename }, 'Original'),
        trashButton)),
    h('div', { class: 'photo-layout' }, h('div', { class: 'photo-main' }, stage, facePanel, similar), side));
  drawSide();
  drawFaces();
  if (refocus) requestAnimationFrame(() => { document.getElementById(refocus)?.focus(); refocus = null; });
  // Keys on this page: f favourite, 0-5 rating, Escape closes the face panel.
  const onKey = async (event) => {
    if (event.target.matches('input, textarea, select') || event.metaKey || event.ctrlKey || event.altKey) return;
    if (event.key === 'Escape') replace(facePanel);
    else if (event.key === 'ArrowLeft' || event.key === 'ArrowRight') {
      if (position < 0 || event.target.closest('[role=radiogroup]')) return;
      event.preventDefault();
      step(event.key === 'ArrowLeft' ? -1 : 1);
    }
    else if (event.key === 'f') { if (await patch({ favorite: !photo.favorite })) drawSide(); }
    else if (/^[0-5]$/.test(event.key)) { if (await patch({ rating: Number(event.key) }, `Rated ${event.key}★`)) drawSide(); }
  };
  // The keys work at once, before the image has arrived (and the view is left cleanly meanwhile).
  document.addEventListener('keydown', onKey);
  loadImage();

  if (photo.analysis_state === 'done') {
    api(`/v1/photos/${photo.id}/similar`, { query: { limit: 8 } }).then((page) => replace(similar,
      h('h2', { id: 'similar-title' }, 'Similar photos'),
      page.items.length ? h('div', { class: 'grid small' }, page.items.map((hit) => photoTile(hit.photo, { caption: reason(hit) }))) : h('p', { class: 'hint' }, 'Nothing similar yet.')))
      .catch((error) => replace(similar, h('p', { class: 'hint' }, describe(error))));
  }
  return () => {
    document.removeEventListener('keydown', onKey);
    if (objectUrl) URL.revokeObjectURL(objectUrl);
  };
}
