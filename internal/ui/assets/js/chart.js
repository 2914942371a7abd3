// Small inline SVG bar charts. Each bar has a <title> (a tooltip on hover)
// and the whole chart an aria-label that says what a reader of the picture
// would learn; the tables next to the charts carry every value.

import {s, num, dur} from './dom.js';

function barClass(run) {
  if (run.status === 'failed') return 'bar failed';
  if (run.status === 'running') return 'bar running';
  return 'bar';
}

function runLabel(run) {
  const t = run.start ? new Date(run.start).toLocaleString() : '';
  return `${t} · ${run.trigger || ''} · ${run.status || ''}`;
}

// bars draws values (oldest first) as bars of equal width.
function bars({items, value, label, cls, width, height, pad, ariaLabel, showMax, fmt}) {
  const n = items.length;
  const top = showMax ? 12 : 1;
  const inner = height - top - 1;
  const max = Math.max(0, ...items.map(value));
  const slot = n ? (width - pad) / n : 0;
  const bw = Math.max(1, Math.min(24, slot * 0.75));
  const svg = s('svg', {width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': ariaLabel, focusable: 'false'});
  if (showMax) {
    svg.append(s('text', {x: 0, y: 9, class: 'lbl'}, 'max ' + fmt(max)));
  }
  svg.append(s('line', {x1: 0, x2: width, y1: height - 0.5, y2: height - 0.5, class: 'axis'}));
  items.forEach((it, i) => {
    const v = value(it);
    // A zero still shows as a sliver, so a run with nothing written is seen.
    const bh = max > 0 ? Math.max(1, (v / max) * inner) : 1;
    const x = pad + i * slot + (slot - bw) / 2;
    const rect = s('rect', {x: x.toFixed(1), y: (height - 1 - bh).toFixed(1), width: bw.toFixed(1), height: bh.toFixed(1), class: cls(it)},
      s('title', {}, `${label(it)}: ${fmt(v)}`));
    svg.append(rect);
  });
  return svg;
}

// sparkline: rows written per recent run, for the overview. runs are the
// API's `recent`, newest first.
export function sparkline(runs, name) {
  const items = (runs || []).slice().reverse();
  if (!items.length) return null;
  const written = items.map(r => r.written);
  const last = written[written.length - 1];
  const aria = `Rows written by the last ${items.length} runs of ${name}: ` +
    `from ${num(Math.min(...written))} to ${num(Math.max(...written))}, latest ${num(last)}` +
    (items.some(r => r.status === 'failed') ? `, ${items.filter(r => r.status === 'failed').length} failed` : '');
  return bars({items, value: r => r.written, label: runLabel, cls: barClass, width: 140, height: 28, pad: 0,
    ariaLabel: aria, showMax: false, fmt: num});
}

// runCharts: duration, rows written and rows rejected of a pipeline's runs
// (newest first, as the API lists them).
export function runChart(runs, what) {
  const items = (runs || []).slice().reverse();
  const spec = {
    duration: {value: r => r.duration_seconds, fmt: dur, title: 'Duration', cls: barClass},
    written: {value: r => r.written, fmt: num, title: 'Rows written', cls: barClass},
    rejected: {value: r => r.rejected, fmt: num, title: 'Rows rejected', cls: r => barClass(r) === 'bar' ? 'bar rej' : barClass(r)},
  }[what];
  const vals = items.map(spec.value);
  const aria = items.length
    ? `${spec.title} of the last ${items.length} runs, oldest to newest: from ${spec.fmt(Math.min(...vals))} to ${spec.fmt(Math.max(...vals))}, latest ${spec.fmt(vals[vals.length - 1])}`
    : `${spec.title}: no runs yet`;
  return bars({items, value: spec.value, label: runLabel, cls: spec.cls, width: 360, height: 110, pad: 0,
    ariaLabel: aria, showMax: true, fmt: spec.fmt});
}
