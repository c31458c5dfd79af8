// dashboard.js — the Outage dashboard (#/dashboard, the landing page): each
// domain's continuity state with since when and why, and the mail it holds,
// waits to re-deliver, re-delivered and deleted (GET continuity); the event
// timeline (GET events); and mail per minute over the last 24 hours
// (accepted, delivered, diverted, re-delivered) drawn as inline SVG from GET
// stats (chart.js does the numbers). It refreshes itself every few seconds
// while it is shown and the tab is visible, and says a domain's change of
// state in the panel's status line.

import {
  alertBox, fmtTime, h, listOf, stateBadge, table, timeEl, uid,
} from './dom.js';
import { adminApi, fail, say } from './ctx.js';
import {
  SERIES, hourly, minuteSeries, niceMax, stepPath, ticks,
} from './chart.js';

const REFRESH_MS = 5000;
const EVENTS_LIMIT = 50;
// The chart is drawn in the pixels of its box (measured at each drawing, and
// again when the window is resized), so that its labels keep their size on
// a phone instead of being scaled down with the lines.
const H = 160; // plot height
const LEFT = 40; // room for the axis labels
const MIN_W = 240;

const ui = {};
const state = {
  shown: false,
  timer: null,
  busy: false,
  again: false,
  lastStates: new Map(), // domain -> state, to say the changes
  domainFilter: '', // '' = all domains
  series: null, // the last chart's numbers (drawn again on a resize)
};

// ------------------------------------------------------------------ domains

function domainTile(d) {
  const id = uid('dom');
  const counts = [
    ['In continuity mailboxes', d.held],
    ['Waiting to re-deliver', d.waiting],
    ['Re-delivered', d.redelivered],
    ['Deleted by users', d.deleted],
  ];
  return h('li', { class: `tile state-${String(d.state).replace(/[^a-z]/g, '')}` },
    h('article', { 'aria-labelledby': id, dataset: { domain: d.domain } },
      h('div', { class: 'tile-head' },
        h('h3', { id }, d.domain),
        stateBadge(d.state)),
      h('p', { class: 'since' },
        d.since ? ['Since ', timeEl(d.since)] : null,
        d.cause ? h('span', { class: 'cause' }, ` — ${d.cause}`) : null),
      d.continuity === false ? h('p', { class: 'hint' }, 'Continuity is not enabled for this domain.') : null,
      h('dl', { class: 'counts' }, counts.map(([label, v]) => [h('dt', {}, label), h('dd', {}, String(v ?? 0))]))));
}

function renderDomains(rows) {
  ui.tiles.replaceChildren(...rows.map(domainTile));
  ui.noDomains.hidden = rows.length > 0;
  // Say what changed since the last look (not on the first).
  for (const d of rows) {
    const before = state.lastStates.get(d.domain);
    if (before && before !== d.state) say(`${d.domain} is now in ${d.state}.`);
    state.lastStates.set(d.domain, d.state);
  }
  const names = rows.map((d) => d.domain);
  const keep = state.domainFilter;
  ui.filter.replaceChildren(h('option', { value: '' }, 'All domains'),
    ...names.map((n) => h('option', { value: n }, n)));
  state.domainFilter = names.includes(keep) ? keep : '';
  ui.filter.value = state.domainFilter;
}

// ------------------------------------------------------------------ timeline

const STATE_WORD = { normal: 'normal', outage: 'outage', recovering: 'recovering' };

function eventText(e) {
  const to = e.to || e.state;
  if (to) {
    const from = e.from ? `${STATE_WORD[e.from] || e.from} → ` : '';
    return `${from}${STATE_WORD[to] || to}`;
  }
  return String(e.type || e.event || 'event');
}

function renderEvents(events) {
  const items = events.map((e) => h('li', { class: `event state-${String(e.to || e.state || '').replace(/[^a-z]/g, '')}` },
    timeEl(e.at_epoch || e.at),
    h('span', { class: 'event-domain' }, e.domain || ''),
    h('span', { class: 'event-what' }, eventText(e)),
    e.cause ? h('span', { class: 'event-cause' }, e.cause) : null));
  ui.events.replaceChildren(...items);
  ui.noEvents.hidden = items.length > 0;
}

// ------------------------------------------------------------------ chart

function svgChart(series, width) {
  const W = Math.max(MIN_W, width - LEFT - 10);
  const top = niceMax(series.max);
  const titleId = uid('chart-title');
  const descId = uid('chart-desc');
  const totals = SERIES.map((s) => `${s.label.toLowerCase()} ${series.totals[s.key]}`).join(', ');
  const svg = h('svg:svg', {
    viewBox: `${-LEFT} -10 ${W + LEFT + 10} ${H + 34}`,
    width: W + LEFT + 10,
    height: H + 34,
    class: 'chart',
    role: 'img',
    'aria-labelledby': `${titleId} ${descId}`,
  },
  h('svg:title', { id: titleId }, 'Mail per minute, last 24 hours'),
  h('svg:desc', { id: descId }, `In the last 24 hours: ${totals}. The busiest minute had ${series.max}.`),
  h('svg:line', { x1: 0, y1: H, x2: W, y2: H, class: 'axis' }),
  h('svg:line', { x1: 0, y1: 0, x2: W, y2: 0, class: 'grid' }),
  h('svg:text', { x: -6, y: 4, class: 'label end' }, String(top)),
  h('svg:text', { x: -6, y: H, class: 'label end' }, '0'),
  ticks(series.start, series.minutes, W, W < 400 ? 12 : 6).map((t) => [
    h('svg:line', { x1: t.x, y1: H, x2: t.x, y2: H + 4, class: 'axis' }),
    h('svg:text', { x: t.x, y: H + 18, class: 'label middle' },
      new Date(t.t * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })),
  ]),
  SERIES.map((s) => h('svg:path', {
    d: stepPath(series.counts[s.key], W, H, top),
    class: `line series-${s.key}`,
    'data-series': s.key,
    'vector-effect': 'non-scaling-stroke',
  })));
  return svg;
}

function drawChart() {
  if (state.series) ui.chart.replaceChildren(svgChart(state.series, ui.chart.clientWidth));
}

function renderChart(stats) {
  const series = minuteSeries(stats, { hours: 24 });
  state.series = series;
  drawChart();
  ui.legend.replaceChildren(...SERIES.map((s) => h('li', { class: `series-${s.key}`, dataset: { series: s.key } },
    h('span', { class: 'swatch', 'aria-hidden': 'true' }),
    `${s.label}: `,
    h('strong', { class: 'total' }, String(series.totals[s.key])))));
  const rows = hourly(series).filter((r) => SERIES.some((s) => r[s.key] > 0)).reverse();
  ui.hourBody.replaceChildren(...rows.map((r) => h('tr', {},
    h('td', {}, fmtTime(r.t)),
    SERIES.map((s) => h('td', { class: 'num' }, String(r[s.key]))))));
  ui.hourNone.hidden = rows.length > 0;
}

// ------------------------------------------------------------------ refresh

async function refresh() {
  if (state.busy) {
    state.again = true; // a newer question (another domain chosen) is asked when this one is answered
    return;
  }
  state.busy = true;
  state.again = false;
  try {
    const domain = state.domainFilter;
    const [cont, events, stats] = await Promise.all([
      adminApi('GET', 'continuity'),
      adminApi('GET', 'events', undefined, { domain, limit: EVENTS_LIMIT }),
      adminApi('GET', 'stats', undefined, { domain, hours: 24 }),
    ]);
    if (!state.shown) return;
    ui.error.clear();
    renderDomains(listOf(cont, 'domains'));
    renderEvents(listOf(events, 'events'));
    renderChart(stats);
    ui.updated.textContent = `Updated ${new Date().toLocaleTimeString()}; updates every ${REFRESH_MS / 1000} seconds.`;
  } catch (e) {
    fail(e, ui.error);
  } finally {
    state.busy = false;
  }
  if (state.again && state.shown) await refresh();
}

function schedule() {
  clearTimeout(state.timer);
  state.timer = null;
  if (!state.shown || document.hidden) return;
  state.timer = setTimeout(async () => {
    await refresh();
    schedule();
  }, REFRESH_MS);
}

let resizeTimer = null;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { if (state.shown) drawChart(); }, 150);
});

document.addEventListener('visibilitychange', () => {
  if (!state.shown) return;
  if (document.hidden) {
    clearTimeout(state.timer);
    state.timer = null;
  } else {
    refresh().then(schedule);
  }
});

// ------------------------------------------------------------------ page

export default {
  id: 'dashboard',
  title: 'Outage dashboard',
  build() {
    const titleId = uid('title');
    ui.error = alertBox();
    ui.updated = h('p', { class: 'hint updated' });
    ui.tiles = h('ul', { class: 'tiles', 'aria-label': 'Domains' });
    ui.noDomains = h('p', { class: 'info', hidden: true }, 'No domain yet.');
    ui.events = h('ol', { class: 'timeline', 'aria-label': 'Events, newest first' });
    ui.noEvents = h('p', { class: 'info', hidden: true }, 'No event yet: every domain has been normal.');
    ui.chart = h('div', { class: 'chart-box' });
    ui.legend = h('ul', { class: 'legend', 'aria-label': 'Totals of the last 24 hours' });
    const filterId = uid('filter');
    ui.filter = h('select', {
      id: filterId,
      onchange: () => {
        state.domainFilter = ui.filter.value;
        refresh();
      },
    });
    const hours = table('Mail per hour, newest first', ['Hour', ...SERIES.map((s) => s.label)]);
    ui.hourBody = hours.body;
    ui.hourNone = h('p', { class: 'info' }, 'No mail in the last 24 hours.');
    return h('section', { class: 'page', id: 'page-dashboard', 'aria-labelledby': titleId },
      h('div', { class: 'page-head' },
        h('h1', { id: titleId, tabindex: '-1' }, 'Outage dashboard'),
        h('button', { type: 'button', onclick: () => refresh() }, 'Refresh now')),
      ui.updated,
      ui.error,
      h('section', { class: 'card', 'aria-labelledby': 'dash-domains' },
        h('h2', { id: 'dash-domains' }, 'Domains'),
        ui.tiles, ui.noDomains),
      h('div', { class: 'picker' }, h('label', { for: filterId }, 'Show the chart and the events of'), ui.filter),
      h('section', { class: 'card', 'aria-labelledby': 'dash-chart' },
        h('h2', { id: 'dash-chart' }, 'Mail per minute, last 24 hours'),
        ui.chart, ui.legend,
        h('details', {}, h('summary', {}, 'Per hour, as a table'), hours, ui.hourNone)),
      h('section', { class: 'card', 'aria-labelledby': 'dash-events' },
        h('h2', { id: 'dash-events' }, 'Event timeline'),
        ui.events, ui.noEvents));
  },
  async show() {
    state.shown = true;
    await refresh();
    schedule();
  },
  hide() {
    state.shown = false;
    clearTimeout(state.timer);
    state.timer = null;
  },
  reset() {
    state.lastStates.clear();
    state.domainFilter = '';
  },
};
