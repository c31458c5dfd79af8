// chart.js — the dashboard's mail-per-minute chart as numbers, without the
// DOM (tested in node: tests/e2e/panel-chart.test.mjs): GET stats gives only
// the minutes that saw mail; minuteSeries() lays them on the full 24-hour
// grid with zeros between, stepPath() turns one series into an SVG path (a
// step line: each minute a flat segment, only the changes written, so 1,440
// minutes make a short path), ticks() the hour marks and hourly() the sums
// per hour that the table beside the chart shows.

export const SERIES = [
  { key: 'accepted', label: 'Accepted' },
  { key: 'delivered', label: 'Delivered' },
  { key: 'diverted', label: 'Diverted' },
  { key: 'redelivered', label: 'Re-delivered' },
];

/** A time as unix seconds: the API's minute starts are unix seconds; a
 * value too small for that is taken as unix minutes. */
export function toSeconds(t) {
  const n = Number(t);
  if (!Number.isFinite(n)) return NaN;
  return n < 1e9 ? n * 60 : n;
}

/**
 * The per-minute counts of stats ({"from", "minutes": [{"t", accepted, ...}]})
 * on a grid of hours*60 minutes that ends with the current minute: the
 * server's clock decides when it names its window's start ("from", the
 * minute `hours` before its current one: the grid ends `hours` after it),
 * else the browser's (now, unix seconds).
 * Returns {start, minutes, counts: {key: number[]}, totals: {key: n}, max}.
 */
export function minuteSeries(stats, { hours = 24, now = Date.now() / 1000, keys = SERIES.map((s) => s.key) } = {}) {
  const minutes = hours * 60;
  const from = toSeconds(stats?.from);
  const last = Number.isFinite(from) && from > 0
    ? Math.floor(from / 60) * 60 + hours * 3600
    : Math.floor(now / 60) * 60;
  const start = last - (minutes - 1) * 60;
  const counts = {};
  const totals = {};
  for (const k of keys) {
    counts[k] = new Array(minutes).fill(0);
    totals[k] = 0;
  }
  for (const m of Array.isArray(stats?.minutes) ? stats.minutes : []) {
    const i = Math.floor((toSeconds(m.t) - start) / 60);
    if (!(i >= 0 && i < minutes)) continue;
    for (const k of keys) {
      const v = Number(m[k]) || 0;
      if (v > 0) {
        counts[k][i] += v;
        totals[k] += v;
      }
    }
  }
  let max = 0;
  for (const k of keys) for (const v of counts[k]) if (v > max) max = v;
  return { start, minutes, counts, totals, max };
}

/** The smallest "nice" axis top (1, 2, 5 times a power of ten) at or above max (at least 1). */
export function niceMax(max) {
  if (!(max > 1)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const f of [1, 2, 5, 10]) if (f * p >= max) return f * p;
  return 10 * p;
}

const r2 = (x) => Math.round(x * 100) / 100;

/** The step line of values over width x height (y grows downwards; top is the axis top). */
export function stepPath(values, width, height, top) {
  const n = values.length;
  if (n === 0) return '';
  const w = width / n;
  const y = (v) => r2(height - (Math.min(v, top) / top) * height);
  let d = `M0 ${y(values[0])}`;
  for (let i = 1; i < n; i += 1) {
    if (values[i] !== values[i - 1]) d += `H${r2(i * w)}V${y(values[i])}`;
  }
  return `${d}H${r2(width)}`;
}

/** Marks at every `every` hours on the grid: [{x, t}] (t: unix seconds of the mark). */
export function ticks(start, minutes, width, every = 6) {
  const out = [];
  const step = every * 3600;
  const end = start + minutes * 60;
  for (let t = Math.ceil(start / step) * step; t <= end; t += step) {
    out.push({ x: r2(((t - start) / (minutes * 60)) * width), t });
  }
  return out;
}

/** Sums per hour of the grid, oldest first: [{t, accepted, ...}]. */
export function hourly(series) {
  const out = [];
  const keys = Object.keys(series.counts);
  for (let i = 0; i < series.minutes; i += 60) {
    const row = { t: series.start + i * 60 };
    for (const k of keys) row[k] = series.counts[k].slice(i, i + 60).reduce((a, b) => a + b, 0);
    out.push(row);
  }
  return out;
}
