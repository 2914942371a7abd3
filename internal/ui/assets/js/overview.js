// The overview: every pipeline with its status, last and next run,
// freshness against its objective, rows written by its recent runs and its
// reject rate. Refreshed in place every few seconds.

import {api} from './api.js';
import {h, fill, trunc, badge, when, dur, pct, route, relative, keepFocus} from './dom.js';
import {sparkline} from './chart.js';

// Problems first: what an operator must look at comes to the top.
const SEVERITY = {failing: 0, stuck: 0, quarantined: 1, late: 2, retrying: 3};
const STATUSES = ['failing', 'stuck', 'quarantined', 'late', 'retrying', 'running', 'paused', 'idle', 'healthy'];

// The filter survives a refresh and a visit to another page.
const filter = {text: '', status: '', sort: 'severity'};

export async function render(view) {
  let pipelines = await api.pipelines();
  let updated = new Date();

  const counts = h('ul', {class: 'counts', 'aria-label': 'Pipelines by status'});
  const stamp = h('p', {class: 'updated', id: 'updated'});
  const caption = h('caption', {id: 'overview-caption'});
  const tbody = h('tbody', {});
  const tbl = h('table', {class: 'fixed', id: 'pipelines'}, caption,
    h('colgroup', {},
      h('col', {class: 'w-name'}), h('col', {class: 'w-status'}), h('col', {class: 'w-last'}),
      h('col', {class: 'w-next'}), h('col', {class: 'w-fresh'}), h('col', {class: 'w-spark'}), h('col', {class: 'w-rate'})),
    h('thead', {}, h('tr', {},
      h('th', {scope: 'col'}, 'Pipeline'),
      h('th', {scope: 'col'}, 'Status'),
      h('th', {scope: 'col'}, 'Last run'),
      h('th', {scope: 'col'}, 'Next run'),
      h('th', {scope: 'col'}, 'Freshness (age / objective)'),
      h('th', {scope: 'col'}, 'Rows written, recent runs'),
      h('th', {scope: 'col', class: 'num'}, 'Reject rate'))),
    tbody);

  const text = h('input', {type: 'search', id: 'filter-text', value: filter.text, autocomplete: 'off'});
  const status = h('select', {id: 'filter-status'},
    h('option', {value: ''}, 'Any status'),
    h('option', {value: 'problems'}, 'Needs attention'),
    STATUSES.map(st => h('option', {value: st}, st)));
  status.value = filter.status;
  const sort = h('select', {id: 'sort'},
    h('option', {value: 'severity'}, 'Needs attention first'),
    h('option', {value: 'name'}, 'Name'));
  sort.value = filter.sort;
  const refreshBtn = h('button', {type: 'button', id: 'refresh'}, 'Refresh now');

  function draw() {
    drawCounts(counts, pipelines);
    stamp.replaceChildren('Updated ', when(updated.toISOString()), ' · refreshes every 5 s ');
    stamp.append(refreshBtn);
    const shown = select(pipelines);
    caption.textContent = shown.length === pipelines.length
      ? `${pipelines.length} pipelines`
      : `${shown.length} of ${pipelines.length} pipelines shown`;
    keepFocus(tbody, () => {
      tbody.replaceChildren(...shown.map(row));
      if (!shown.length) {
        tbody.append(h('tr', {}, h('td', {colspan: 7, class: 'empty'},
          pipelines.length ? 'No pipeline matches the filter.' : 'No pipeline is loaded: add pipeline files to the daemon\'s folder.')));
      }
    });
  }

  text.addEventListener('input', () => { filter.text = text.value; draw(); });
  status.addEventListener('change', () => { filter.status = status.value; draw(); });
  sort.addEventListener('change', () => { filter.sort = sort.value; draw(); });

  async function refresh(live = () => true) {
    const ps = await api.pipelines();
    if (!live()) return;
    pipelines = ps;
    updated = new Date();
    draw();
  }
  refreshBtn.addEventListener('click', () => refresh());

  fill(view,
    h('h1', {}, 'Pipelines'),
    counts,
    h('div', {class: 'toolbar', role: 'search'},
      h('div', {class: 'field grow'}, h('label', {for: 'filter-text'}, 'Filter by name'), text),
      h('div', {class: 'field'}, h('label', {for: 'filter-status'}, 'Status'), status),
      h('div', {class: 'field'}, h('label', {for: 'sort'}, 'Sort'), sort)),
    stamp,
    h('div', {class: 'scroll'}, tbl));
  draw();
  return {refresh};
}

function select(all) {
  const t = filter.text.trim().toLowerCase();
  const out = all.filter(p => {
    if (t && !p.name.toLowerCase().includes(t) && !(p.description || '').toLowerCase().includes(t)) return false;
    if (filter.status === 'problems') return p.status in SEVERITY;
    if (filter.status) return p.status === filter.status;
    return true;
  });
  out.sort((a, b) => {
    if (filter.sort === 'severity') {
      const d = (SEVERITY[a.status] ?? 9) - (SEVERITY[b.status] ?? 9);
      if (d) return d;
    }
    return a.name.localeCompare(b.name);
  });
  return out;
}

function drawCounts(ul, pipelines) {
  const by = {};
  for (const p of pipelines) by[p.status] = (by[p.status] || 0) + 1;
  ul.replaceChildren(...STATUSES.filter(st => by[st]).map(st =>
    h('li', {}, badge(st, `${by[st]} ${st}`))));
}

function row(p) {
  const last = p.last_run;
  const nameCell = h('td', {},
    trunc(p.name, 'a', {href: route('pipelines', p.name), dataset: {key: 'p:' + p.name}, class: 'name'}),
    p.description ? trunc(p.description, 'span', {class: 'muted small'}) : null,
    p.problem ? trunc(p.problem, 'span', {class: 'small problem'}) : null);
  const statusCell = h('td', {class: 'status'}, badge(p.status),
    p.consecutive_failures > 1 ? h('span', {class: 'muted small'}, ` ${p.consecutive_failures} failures in a row`) : null);
  const lastContent = last
    ? [badge(last.status), ' ', h('a', {href: route('runs', last.id), dataset: {key: 'r:' + p.name},
        'aria-label': `Last run of ${p.name}, ${last.status}, started ${new Date(last.start).toLocaleString()}`}, when(last.start)),
      h('span', {class: 'muted small rel'}, relative(new Date(last.start)))]
    : h('span', {class: 'muted'}, 'never ran');
  let next;
  if (p.paused || p.quarantined) next = h('span', {class: 'muted'}, p.status);
  else if (p.next_run) next = when(p.next_run, {rel: true});
  else next = h('span', {class: 'muted'}, p.schedule ? '—' : 'on demand');
  let fresh = h('span', {class: 'muted'}, 'no objective');
  if (p.freshness_slo_seconds) {
    fresh = h('span', {class: p.late ? 'late-text' : null},
      `${dur(p.freshness_age_seconds)} / ${dur(p.freshness_slo_seconds)}`, p.late ? ' — late' : '');
  }
  return h('tr', {dataset: {pipeline: p.name, status: p.status}},
    nameCell, statusCell, h('td', {class: 'last'}, lastContent),
    h('td', {}, next), h('td', {class: 'fresh'}, fresh),
    h('td', {class: 'spark'}, sparkline(p.recent, p.name) || h('span', {class: 'muted'}, 'no runs')),
    h('td', {class: 'num'}, last ? pct(p.reject_rate) : '—'));
}
