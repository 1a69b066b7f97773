// One person: rename, merge, delete; their faces, least confident guesses first, confirmed or rejected
// with the keyboard (y / n, arrows to move); their photos.
import { all, api } from '../api.js';
import { confirmDialog, h, navigate, pageHeader, pagedGrid, percent, photoTile, promptDialog, replace, showError, toast } from '../ui.js';

export async function render(main, [personId]) {
  let person = await api(`/v1/people/${personId}`);
  const others = (await all('/v1/people', { include_hidden: true })).filter((p) => p.id !== personId);
  const faceGrid = h('ul', { class: 'face-grid review-faces', 'aria-label': 'Faces, least sure first' });
  const merge = h('select', { 'aria-label': 'Merge into' }, h('option', { value: '' }, 'Merge into…'), others.map((p) => h('option', { value: p.id }, p.name)));
  merge.addEventListener('change', async () => {
    const target = others.find((p) => p.id === merge.value);
    if (!target || !(await confirmDialog(`Merge ${person.name} into ${target.name}? Every face of ${person.name} becomes ${target.name}.`, 'Merge'))) { merge.value = ''; return; }
    try { await api(`/v1/people/${target.id}/merge`, { method: 'POST', json: { from_ids: [person.id] } }); toast('Merged'); navigate(`/people/${target.id}`); } catch (error) { showError(error); }
  });
  const title = h('h1', {}, person.name);
  const head = pageHeader('',
    h('button', { type: 'button', class: 'secondary', onclick: async () => {
      const name = await promptDialog('Rename this person', { value: person.name, confirmLabel: 'Rename' });
      if (!name) return;
      try { person = await api(`/v1/people/${person.id}`, { method: 'PATCH', json: { name } }); title.textContent = person.name; } catch (error) { showError(error); }
    } }, 'Rename'),
    others.length ? merge : null,
    h('button', { type: 'button', class: 'secondary', id: 'hide-person', onclick: async (event) => {
      try {
        person = await api(`/v1/people/${person.id}`, { method: 'PATCH', json: { hidden: !person.hidden } });
        event.target.textContent = person.hidden ? 'Show in people' : 'Hide';
        toast(person.hidden ? `${person.name} is hidden from people and filters` : `${person.name} is shown again`);
      } catch (error) { showError(error); }
    } }, person.hidden ? 'Show in people' : 'Hide'),
    h('button', { type: 'button', class: 'danger', onclick: async () => {
      if (!(await confirmDialog(`Forget ${person.name}? Their faces stay, without a name.`, 'Forget'))) return;
      try { await api(`/v1/people/${person.id}`, { method: 'DELETE' }); navigate('/people'); } catch (error) { showError(error); }
    } }, 'Forget person'));
  head.querySelector('h1').replaceWith(title);
  const birth = h('input', { type: 'date', id: 'birth-date', value: person.birth_date || '' });
  birth.addEventListener('change', async () => {
    try { person = await api(`/v1/people/${person.id}`, { method: 'PATCH', json: { birth_date: birth.value || null } }); toast('Birth date saved'); } catch (error) { showError(error); }
  });
  main.append(head,
    h('div', { class: 'row' }, h('label', { for: 'birth-date' }, 'Birth date'), birth),
    h('p', { class: 'hint' }, `${person.photo_count} photos · ${person.face_count} faces · ${person.labeled_count} named by you. Check the model's guesses: focus a face, press y if it is ${person.name}, n if not.`),
    h('h2', {}, 'Faces, least sure first'), faceGrid,
    h('h2', {}, 'Photos'),
    pagedGrid((cursor) => api(`/v1/people/${person.id}/photos`, { query: { limit: 60, cursor } }), (photo) => photoTile(photo)));

  const faces = await all('/v1/faces', { person_id: person.id, order: 'confidence' });
  const decide = async (face, item, yes) => {
    try {
      if (yes) await api('/v1/faces/label', { method: 'POST', json: { face_ids: [face.id], person_id: person.id } });
      else await api(`/v1/faces/${face.id}/person`, { method: 'DELETE' });
      item.dataset.decided = yes ? 'yes' : 'no';
      item.querySelector('.hint').textContent = yes ? 'confirmed' : 'not them';
      (item.nextElementSibling?.querySelector('button') || item.querySelector('button')).focus();
    } catch (error) { showError(error); }
  };
  // Splitting a person: a face re-labelled as somebody else moves to them.
  const moveTo = (face, item) => {
    const select = h('select', { 'aria-label': 'Move this face to', class: 'move-to' },
      h('option', { value: '' }, 'Move to…'), others.map((p) => h('option', { value: p.id }, p.name)), h('option', { value: 'new' }, 'Somebody new…'));
    select.addEventListener('change', async () => {
      let body = { person_id: select.value };
      if (select.value === 'new') {
        const name = await promptDialog('Who is this?', { confirmLabel: 'Move face' });
        if (!name) { select.value = ''; return; }
        body = { name };
      }
      try {
        const [moved] = (await api('/v1/faces/label', { method: 'POST', json: { face_ids: [face.id], ...body } })).items;
        item.dataset.decided = 'no';
        item.querySelector('.hint').textContent = `moved to ${moved.person.name}`;
      } catch (error) { showError(error); select.value = ''; }
    });
    return select;
  };
  replace(faceGrid, faces.map((face) => {
    const item = h('li', { class: 'face-card', dataset: { faceId: face.id } });
    const mine = face.person_source === 'user';
    item.append(h('button', {
      type: 'button', class: 'face-pick', 'aria-label': `Face ${mine ? 'you named' : `the model named, ${percent(face.person_confidence || 0)} sure`}. y: it is ${person.name}, n: it is not`,
      onkeydown: (event) => {
        if (event.key === 'y') decide(face, item, true);
        else if (event.key === 'n') decide(face, item, false);
        else if (event.key === 'ArrowRight') item.nextElementSibling?.querySelector('button')?.focus();
        else if (event.key === 'ArrowLeft') item.previousElementSibling?.querySelector('button')?.focus();
        else return;
        event.preventDefault();
      },
      onclick: () => navigate(`/photo/${face.photo_id}`),
    }, h('img', { src: face.thumbnail_url, alt: '', width: 96, height: 96, loading: 'lazy' })),
    h('span', { class: 'hint' }, mine ? 'named by you' : `model ${percent(face.person_confidence || 0)}`),
    h('div', { class: 'row tight' },
      h('button', { type: 'button', class: 'icon', 'aria-label': `Yes, ${person.name}`, onclick: () => decide(face, item, true) }, '✓'),
      h('button', { type: 'button', class: 'icon', 'aria-label': `Not ${person.name}`, onclick: () => decide(face, item, false) }, '✕')),
    moveTo(face, item),
    h('button', { type: 'button', class: 'link small', 'aria-pressed': String(person.cover_face_id === face.id), onclick: async () => {
      try { person = await api(`/v1/people/${person.id}`, { method: 'PATCH', json: { cover_face_id: face.id } }); toast('Cover face chosen'); } catch (error) { showError(error); }
    } }, 'Use as cover'));
    return item;
  }));
}
