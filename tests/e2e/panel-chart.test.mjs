// panel-chart.test.mjs — the control panel's chart arithmetic
// (web/admin/chart.js) in node, without a browser: the sparse minutes of GET
// stats laid on the 24-hour grid with zeros between (and on the server's
// grid when it names its start), minute starts given in unix minutes as
// well as seconds, counts outside the window dropped, the step path that
// writes only the changes, the axis top, the hour marks and the sums per hour.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  SERIES, hourly, minuteSeries, niceMax, stepPath, ticks, toSeconds,
} from '../../web/admin/chart.js';

const NOW = 1_800_000_030; // 30 s into a minute
const LAST = 1_800_000_000; // that minute's start

test('the four series of the chart, in the legend\'s order', () => {
  assert.deepEqual(SERIES.map((s) => s.key), ['accepted', 'delivered', 'diverted', 'redelivered']);
});

test('sparse minutes are zero-filled on a grid that ends with the current minute', () => {
  const s = minuteSeries({
    minutes: [
      { t: LAST, accepted: 2, delivered: 1, diverted: 1 },
      { t: LAST - 60 * 10, accepted: 3, delivered: 3, deferred: 7 },
      { t: LAST - 24 * 3600, accepted: 99 }, // one minute before the window
      { t: LAST + 60, accepted: 99 }, // after it
    ],
  }, { hours: 24, now: NOW });
  assert.equal(s.minutes, 1440);
  assert.equal(s.start, LAST - 1439 * 60);
  assert.equal(s.counts.accepted.length, 1440);
  assert.equal(s.counts.accepted[1439], 2);
  assert.equal(s.counts.accepted[1429], 3);
  assert.equal(s.counts.accepted.filter((v) => v !== 0).length, 2);
  assert.deepEqual(s.totals, { accepted: 5, delivered: 4, diverted: 1, redelivered: 0 });
  assert.equal(s.max, 3);
  assert.equal('deferred' in s.counts, false);
});

test('the server\'s "from" decides the grid; unix minutes are read as minutes', () => {
  // The server's window starts 24 hours before its current minute, which ends the grid.
  const from = LAST - 24 * 3600;
  const s = minuteSeries({
    from,
    minutes: [{ t: from / 60 + 5, redelivered: 4 }, { t: LAST, diverted: 1 }, { t: from, accepted: 7 }],
  }, { hours: 24, now: 0 });
  assert.equal(s.start, from + 60);
  assert.equal(s.counts.redelivered[4], 4);
  assert.equal(s.counts.diverted[1439], 1, 'the current minute is the last');
  assert.equal(s.totals.accepted, 0, 'the minute a day before is outside the last 24 hours');
  assert.equal(toSeconds(29_000_000), 29_000_000 * 60);
  assert.equal(toSeconds(LAST), LAST);
  assert.ok(Number.isNaN(toSeconds('x')));
});

test('nothing, or a malformed answer, is an empty chart', () => {
  for (const stats of [null, {}, { minutes: 'no' }, { minutes: [{ t: 'x', accepted: 5 }] }]) {
    const s = minuteSeries(stats, { hours: 1, now: NOW });
    assert.equal(s.max, 0);
    assert.deepEqual(Object.values(s.totals), [0, 0, 0, 0]);
  }
});

test('the step path writes only the changes and spans the width', () => {
  assert.equal(stepPath([0, 0, 0, 0], 400, 100, 1), 'M0 100H400');
  assert.equal(stepPath([0, 2, 2, 0], 400, 100, 2), 'M0 100H100V0H300V100H400');
  // Values over the top are drawn at the top.
  assert.equal(stepPath([5], 10, 100, 2), 'M0 0H10');
  const long = stepPath(new Array(1440).fill(0).map((_, i) => (i === 700 ? 1 : 0)), 720, 160, 1);
  assert.equal(long, 'M0 160H350V0H350.5V160H720');
  assert.equal(stepPath([], 10, 10, 1), '');
});

test('the axis top is 1, 2 or 5 times a power of ten', () => {
  assert.deepEqual([0, 1, 2, 3, 7, 10, 11, 48, 120, 501].map(niceMax), [1, 1, 2, 5, 10, 10, 20, 50, 200, 1000]);
});

test('hour marks every six hours, and sums per hour', () => {
  const start = 1_800_000_000 - 1_800_000_000 % 21600 - 3600; // an hour before a 6-hour mark
  const marks = ticks(start, 1440, 720);
  assert.deepEqual(marks.map((m) => m.t - start), [3600, 3600 + 21600, 3600 + 43200, 3600 + 64800]);
  assert.equal(marks[0].x, 30);
  const s = minuteSeries({ minutes: [{ t: start + 60, diverted: 2 }, { t: start + 3600 * 2 + 59 * 60, diverted: 1 }] },
    { hours: 24, now: start + 1439 * 60 + 30 });
  const rows = hourly(s);
  assert.equal(rows.length, 24);
  assert.deepEqual(rows.slice(0, 3).map((r) => r.diverted), [2, 0, 1]);
  assert.equal(rows[2].t, start + 7200);
});
