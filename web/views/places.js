// Places: where the photos were taken (offline reverse geocoding of their GPS), as a list with counts
// and a photo each (press one for the library filtered by it), and as a simple map: an equirectangular
// SVG plot of the API's clusters, no tiles and no map library. A cluster shows its photos below.
import { api } from '../api.js';
import { empty, errorState, h, link, loading, pageHeader, pagedGrid, photoTile, replace, showError } from '../ui.js';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 720;
const HEIGHT = 360; // the plot is always 2:1, like the whole world in this projection
const WORLD = [-180, -90, 180, 90];

function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith('on') && typeof value === 'function') element.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) element.setAttribute(key, value);
  }
  for (const child of children.flat()) if (child) element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return element;
}

export const placeName = (place) => place.city || place.region || place.country;

/** A view box around `bbox` (west, south, east, north) with a margin, widened to the plot's 2:1. */
function viewAround([west, south, east, north]) {
  const margin = Math.max(0.5, (east - west) * 0.15, (north - south) * 0.15);
  let [w, s, e, n] = [west - margin, south - margin, east + margin, north + margin];
  const [cx, cy] = [(w + e) / 2, (s + n) / 2];
  const half = Math.max((e - w) / 2, n - s);
  [w, e, s, n] = [cx - half, cx + half, cy - half / 2, cy + half / 2];
  if (e - w >= 360) return WORLD;
  // Keep inside the world, sliding rather than shrinking.
  if (s < -90) { n += -90 - s; s = -90; }
  if (n > 90) { s -= n - 90; n = 90; }
  if (w < -180) { e += -180 - w; w = -180; }
  if (e > 180) { w -= e - 180; e = 180; }
  return [w, Math.max(-90, s), e, Math.min(90, n)];
}

/** Great-circle distance in km. */
function distanceKm(lat1, lon1, lat2, lon2) {
  const rad = Math.PI / 180;
  const a = Math.sin(((lat2 - lat1) * rad) / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(((lon2 - lon1) * rad) / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.min(1, Math.sqrt(a)));
}

/** The photo filter for a cluster: a circle around its centre reaching its farthest photo. */
export function clusterArea(cluster) {
  const [west, south, east, north] = cluster.bbox;
  const corners = [[south, west], [south, east], [north, west], [north, east]];
  const reach = Math.max(...corners.map(([lat, lon]) => distanceKm(cluster.lat, cluster.lon, lat, lon)));
  return { lat: cluster.lat.toFixed(5), lon: cluster.lon.toFixed(5), radius_km: String(Math.max(1, Math.ceil(reach + 0.5))) };
}

function gridStep(span) {
  for (const step of [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 45]) if (span / step <= 8) return step;
  return 60;
}

export async function render(main) {
  const mapBox = h('figure', { class: 'map card', id: 'place-map' });
  const mapStatus = h('p', { class: 'hint', role: 'status', id: 'map-status' });
  const reset = h('button', { type: 'button', class: 'secondary', hidden: true, onclick: () => showMap(WORLD) }, 'Whole world');
  const chosen = h('section', { class: 'cluster-photos', id: 'cluster-photos', 'aria-live': 'polite' });
  const list = h('ul', { class: 'place-grid', id: 'place-list' }, h('li', {}, loading('Loading places')));
  main.append(pageHeader('Places'),
    h('p', { class: 'hint' }, 'Where your photos were taken, from their GPS position (named offline). Photos without a position are not here.'),
    h('section', { 'aria-labelledby': 'map-title', class: 'map-section' }, h('div', { class: 'row spread' }, h('h2', { id: 'map-title' }, 'Map'), reset), mapBox, mapStatus, chosen),
    h('section', { 'aria-labelledby': 'places-title' }, h('h2', { id: 'places-title' }, 'Places by name'), list));
  let grid = null;

  async function showMap(view) {
    reset.hidden = view === WORLD;
    const [west, south, east, north] = view;
    // The API's cells are about 64 px of a 256 px tile: pick the zoom that fits the plot's width.
    const pixels = mapBox.clientWidth || WIDTH;
    const zoom = Math.max(0, Math.min(22, Math.floor(Math.log2((360 / (east - west)) * (pixels / 256)))));
    mapStatus.textContent = 'Loading the map…';
    let answer;
    try {
      answer = await api('/v1/map', { query: { bbox: view.map((v) => v.toFixed(5)).join(','), zoom } });
    } catch (error) {
      replace(mapBox, errorState(error));
      mapStatus.textContent = '';
      return;
    }
    const x = (lon) => ((lon - west) / (east - west)) * WIDTH;
    const y = (lat) => ((north - lat) / (north - south)) * HEIGHT;
    const step = gridStep(east - west);
    // Circles and words keep their size on screen (a finger's width on a phone), whatever the plot's.
    const scale = WIDTH / pixels;
    const lines = [];
    // A graticule with its degrees (labels clear of the corners, where they would overlap).
    for (let lon = Math.ceil(west / step) * step; lon <= east; lon += step) {
      lines.push(svg('line', { x1: x(lon), x2: x(lon), y1: 0, y2: HEIGHT, class: Math.abs(lon) < 1e-9 ? 'axis' : 'graticule' }));
      if (x(lon) > 30 * scale && x(lon) < WIDTH - 40 * scale) lines.push(svg('text', { x: x(lon) + 3, y: HEIGHT - 4, class: 'map-label', 'font-size': (11 * scale).toFixed(1) }, `${+lon.toFixed(2)}°`));
    }
    for (let lat = Math.ceil(south / step) * step; lat <= north; lat += step) {
      lines.push(svg('line', { x1: 0, x2: WIDTH, y1: y(lat), y2: y(lat), class: Math.abs(lat) < 1e-9 ? 'axis' : 'graticule' }));
      if (y(lat) > 16 * scale && y(lat) < HEIGHT - 20 * scale) lines.push(svg('text', { x: 3, y: y(lat) - 3, class: 'map-label', 'font-size': (11 * scale).toFixed(1) }, `${+lat.toFixed(2)}°`));
    }
    const clusters = answer.items.map((cluster) => {
      const label = `${cluster.count} photo${cluster.count === 1 ? '' : 's'} near ${cluster.lat.toFixed(2)}, ${cluster.lon.toFixed(2)}`;
      const open = () => showCluster(cluster, label);
      return svg('g', {
        class: 'cluster-dot', role: 'button', tabindex: '0', 'aria-label': label, 'data-count': cluster.count,
        transform: `translate(${x(cluster.lon).toFixed(1)} ${y(cluster.lat).toFixed(1)})`,
        onclick: open,
        onkeydown: (event) => { if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); open(); } },
      }, svg('title', {}, label),
      svg('circle', { r: (scale * Math.min(32, 12 + 2.5 * Math.sqrt(cluster.count - 1))).toFixed(1) }),
      svg('text', { class: 'cluster-count', 'text-anchor': 'middle', dy: '0.35em', 'font-size': (12 * scale).toFixed(1) }, cluster.count));
    });
    replace(mapBox, svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'group', 'aria-label': 'Map of your photos: circles sized by how many photos were taken there', class: 'map-plot' },
      svg('rect', { width: WIDTH, height: HEIGHT, class: 'map-sea' }), ...lines, ...clusters));
    mapStatus.textContent = answer.items.length
      ? `${answer.items.length} area${answer.items.length === 1 ? '' : 's'} on the map; press one to see its photos.`
      : 'No photo with a GPS position here.';
  }

  function showCluster(cluster, label) {
    grid?.stop();
    const area = clusterArea(cluster);
    const query = new URLSearchParams(area).toString();
    const spread = cluster.bbox[2] - cluster.bbox[0] > 1e-4 || cluster.bbox[3] - cluster.bbox[1] > 1e-4;
    grid = pagedGrid((cursor) => api('/v1/photos', { query: { ...area, limit: 60, cursor } }), (photo) => photoTile(photo),
      { emptyState: empty('No photos here', 'They may have moved to the trash.') });
    replace(chosen, h('div', { class: 'row spread' }, h('h3', { id: 'cluster-title' }, label),
      h('div', { class: 'actions' },
        cluster.count > 1 && spread ? h('button', { type: 'button', class: 'secondary', onclick: () => showMap(viewAround(cluster.bbox)) }, 'Zoom in') : null,
        link(`/?${query}`, { class: 'button secondary' }, 'Open in the library'))), grid);
  }

  const placeCard = (place) => {
    const name = placeName(place);
    const where = [place.city, place.region, place.country].filter(Boolean).join(', ');
    return h('li', { class: 'place-card', dataset: { place: name } }, link(`/?place=${encodeURIComponent(name)}`, { 'aria-label': `${where}: ${place.count} photo${place.count === 1 ? '' : 's'}` },
      h('img', { src: `/v1/photos/${place.photo_id}/thumbnail`, alt: '', width: 256, height: 256, loading: 'lazy' }),
      h('strong', {}, name),
      h('span', { class: 'hint' }, [[place.region, place.country].filter((part) => part && part !== name).join(', '), `${place.count} photo${place.count === 1 ? '' : 's'}`].filter(Boolean).join(' · '))));
  };

  // Places page by page, most photos first; more on request.
  const morePlaces = h('button', { type: 'button', class: 'secondary', hidden: true, id: 'more-places' }, 'More places');
  list.after(morePlaces);
  async function showPlaces(cursor = null) {
    morePlaces.disabled = true;
    try {
      const page = await api('/v1/places', { query: { limit: 100, cursor } });
      if (!cursor && !page.items.length) {
        list.replaceWith(empty('No places yet', 'Photos with a GPS position show up here, grouped by city, region and country.'));
        return;
      }
      if (!cursor) replace(list);
      list.append(...page.items.map(placeCard));
      morePlaces.hidden = !page.next_cursor;
      morePlaces.onclick = () => showPlaces(page.next_cursor);
    } catch (error) {
      if (cursor) showError(error); else replace(list, h('li', {}, errorState(error)));
    } finally {
      morePlaces.disabled = false;
    }
  }

  /** The map opens on where the photos are: the box around every cluster of the whole world. */
  async function firstView() {
    try {
      const world = await api('/v1/map', { query: { bbox: WORLD.join(','), zoom: 0 } });
      if (!world.items.length) return WORLD;
      const boxes = world.items.map((c) => c.bbox);
      return viewAround([Math.min(...boxes.map((b) => b[0])), Math.min(...boxes.map((b) => b[1])), Math.max(...boxes.map((b) => b[2])), Math.max(...boxes.map((b) => b[3]))]);
    } catch {
      return WORLD; // the map itself says what went wrong
    }
  }

  await Promise.all([firstView().then(showMap), showPlaces()]);
  return () => grid?.stop();
}
