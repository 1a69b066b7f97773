// People: suggested clusters of unnamed faces (named in one action), the people, and faces nobody named.
import { all, api } from '../api.js';
import { empty, h, link, loading, pageHeader, percent, replace, showError, toast } from '../ui.js';

export async function render(main) {
  const clusters = h('section', { 'aria-labelledby': 'clusters-title', class: 'clusters' });
  const peopleList = h('section', { 'aria-labelledby': 'people-title' });
  const unnamed = h('section', { 'aria-labelledby': 'unnamed-title' });
  let showHidden = new URLSearchParams(location.search).get('hidden') === 'true';
  const hiddenToggle = h('button', {
    type: 'button', class: 'secondary', 'aria-pressed': String(showHidden),
    onclick: async () => {
      showHidden = !showHidden;
      hiddenToggle.setAttribute('aria-pressed', String(showHidden));
      history.replaceState({}, '', showHidden ? '/people?hidden=true' : '/people');
      await draw();
    },
  }, 'Show hidden people');
  main.append(pageHeader('People', hiddenToggle), loading('Loading people'), clusters, peopleList, unnamed);
  let people = [];

  async function draw() {
    people = await all('/v1/people', { include_hidden: showHidden });
    const [groups, faces] = await Promise.all([
      api('/v1/faces/clusters'),
      api('/v1/faces', { query: { unlabeled: true, order: 'confidence', limit: 60 } }),
    ]);
    main.querySelector('.loading')?.remove();
    replace(clusters, h('h2', { id: 'clusters-title' }, 'Name these groups'),
      h('datalist', { id: 'people-names' }, people.map((p) => h('option', { value: p.name }))),
      groups.items.length
        ? h('div', { class: 'cluster-list' }, groups.items.slice(0, 12).map((group, index) => clusterCard(group, index)))
        : h('p', { class: 'hint' }, 'No groups of unnamed faces right now. New uploads with faces bring more.'));
    replace(peopleList, h('h2', { id: 'people-title' }, 'People'),
      people.length ? h('ul', { class: 'people-grid' }, people.map((person) => h('li', { class: `person-card${person.hidden ? ' hidden-person' : ''}` },
        link(`/people/${person.id}`, { 'aria-label': `${person.name}${person.hidden ? ' (hidden)' : ''}: ${person.photo_count} photos` },
          person.thumbnail_url ? h('img', { src: person.thumbnail_url, alt: '', width: 120, height: 120, loading: 'lazy' }) : h('span', { class: 'avatar', 'aria-hidden': 'true' }, person.name[0]),
          h('strong', {}, person.name, person.hidden ? h('span', { class: 'hint' }, ' · hidden') : null),
          h('span', { class: 'hint' }, `${person.photo_count} photo${person.photo_count === 1 ? '' : 's'} · ${person.labeled_count} named by you`)))))
        : empty('Nobody named yet', 'Name a group above, or open a photo and press a face to name it.'));
    const nameless = faces.items.filter((face) => !face.person);
    replace(unnamed, h('h2', { id: 'unnamed-title' }, 'Faces without a name'),
      nameless.length ? h('ul', { class: 'face-grid' }, nameless.map((face) => h('li', {},
        link(`/photo/${face.photo_id}`, { class: 'face-link', dataset: { faceId: face.id }, 'aria-label': face.suggestion ? `Face, maybe ${face.suggestion.person.name}` : 'Face without a name' },
          h('img', { src: face.thumbnail_url, alt: '', width: 96, height: 96, loading: 'lazy' }),
          face.suggestion ? h('span', { class: 'hint' }, `${face.suggestion.person.name}? ${percent(face.suggestion.confidence)}`) : null))))
        : h('p', { class: 'hint' }, 'Every face has a name.'));
  }

  function clusterCard(group, index) {
    const chosen = new Set(group.face_ids);
    const input = h('input', { id: `cluster-name-${index}`, list: 'people-names', autocomplete: 'off', required: true });
    return h('form', {
      class: 'cluster card', dataset: { size: group.size },
      onsubmit: async (event) => {
        event.preventDefault();
        const name = input.value.trim();
        const known = people.find((p) => p.name.toLowerCase() === name.toLowerCase());
        try {
          await api('/v1/faces/label', { method: 'POST', json: { face_ids: [...chosen], ...(known ? { person_id: known.id } : { name }) } });
          toast(`Named ${chosen.size} faces ${name}`);
          await draw();
        } catch (error) { showError(error); }
      },
    },
    h('div', { class: 'cluster-faces' }, group.face_ids.slice(0, 24).map((faceId) => {
      const box = h('input', { type: 'checkbox', checked: true, 'aria-label': 'Include this face', onchange: () => (box.checked ? chosen.add(faceId) : chosen.delete(faceId)) });
      return h('label', { class: 'cluster-face' }, box, h('img', { src: `/v1/faces/${faceId}/thumbnail`, alt: 'Face in this group', width: 72, height: 72, loading: 'lazy' }));
    })),
    h('label', { for: `cluster-name-${index}` }, `Who are these ${group.size} faces? Untick any that is somebody else.`),
    h('div', { class: 'row' }, input, h('button', { type: 'submit' }, 'Name them')));
  }

  await draw();
}
