// One run: its counts, throughput, error, rejects by step and its dead
// letters. Refreshed while the run is in flight.

import {api} from './api.js';
import {h, fill, trunc, badge, when, dur, num, route, shortHash, keepFocus} from './dom.js';
import {deadLetterTable} from './deadletters.js';

export async function render(view, {id}) {
  let r = await api.run(id);
  let dls = await api.deadLetters({run: id, limit: 100});

  const head = h('div', {});
  const body = h('div', {});

  function draw() {
    head.replaceChildren(
      h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'}, h('a', {href: '#/'}, 'Pipelines'), ' › ',
        trunc(r.pipeline, 'a', {href: route('pipelines', r.pipeline)}), ' › ', h('span', {'aria-current': 'page'}, 'run')),
      h('h1', {}, h('span', {class: 'title mono', title: r.id}, 'Run ' + r.id), h('span', {id: 'run-status'}, badge(r.status))));
    const steps = Object.entries(r.rejects_by_step || {}).sort((a, b) => b[1] - a[1]);
    const maxStep = Math.max(1, ...steps.map(([, n]) => n));
    fill(body,
      h('dl', {class: 'stats', id: 'counts'},
        stat('Read', num(r.read)), stat('Written', num(r.written)), stat('Rejected', num(r.rejected)),
        stat('Filtered', num(r.filtered)), stat('Duration', dur(r.duration_seconds)),
        stat('Throughput', r.rows_per_second ? `${num(Math.round(r.rows_per_second))} rows/s` : '—')),
      r.error ? [h('h2', {}, 'Error'), h('pre', {class: 'error', id: 'run-error'}, r.error)] : null,
      h('h2', {}, 'Details'),
      h('dl', {class: 'props'},
        dt('Pipeline', h('a', {href: route('pipelines', r.pipeline)}, r.pipeline)),
        dt('Trigger', r.trigger),
        dt('Logical time', when(r.logical_time)),
        dt('Started', when(r.start)),
        dt('Ended', r.end ? when(r.end) : 'still running'),
        dt('Version', h('span', {class: 'mono', title: r.version}, shortHash(r.version))),
        dt('Cursor before', cursor(r.cursor_before)),
        dt('Cursor after', cursor(r.cursor_after))),
      h('h2', {}, 'Rejects by step'),
      steps.length
        ? h('table', {id: 'rejects-by-step'},
          h('caption', {}, 'Records of this run that went to the dead letters, by the step that rejected them'),
          h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Step'), h('th', {scope: 'col', class: 'num'}, 'Rejected'), h('th', {scope: 'col'}, 'Share'))),
          h('tbody', {}, steps.map(([step, n]) => h('tr', {},
            h('td', {class: 'mono'}, step), h('td', {class: 'num'}, num(n)),
            h('td', {}, h('meter', {min: 0, max: maxStep, value: n, 'aria-label': `${step}: ${n}`}))))))
        : h('p', {class: 'empty'}, 'No record of this run was rejected.'),
      h('h2', {}, 'Dead letters of this run'),
      dls.total
        ? [h('p', {}, `${num(dls.total)} dead letter(s)${dls.total > dls.items.length ? `, the first ${dls.items.length} shown` : ''}. `,
            h('a', {href: '#/deadletters?' + new URLSearchParams({run: r.id})}, 'Open them in the dead letters page'), ' to replay or purge them.'),
          deadLetterTable(dls.items, {selectable: false})]
        : h('p', {class: 'empty'}, 'None.'));
  }

  async function refresh(live = () => true) {
    if (r.status !== 'running') return;
    const [nr, nd] = await Promise.all([api.run(id), api.deadLetters({run: id, limit: 100})]);
    if (!live()) return;
    r = nr;
    dls = nd;
    keepFocus(view, draw);
  }

  fill(view, head, body);
  draw();
  return {refresh};
}

function stat(label, value) {
  return h('div', {}, h('dt', {}, label), h('dd', {}, value));
}

function dt(label, value) {
  return [h('dt', {}, label), h('dd', {}, value)];
}

function cursor(c) {
  if (!c) return h('span', {class: 'muted'}, '—');
  return h('details', {}, h('summary', {}, trunc(c, 'span', {class: 'mono'})), h('pre', {class: 'mono'}, pretty(c)));
}

function pretty(c) {
  try {
    return JSON.stringify(JSON.parse(c), null, 2);
  } catch {
    return c;
  }
}
