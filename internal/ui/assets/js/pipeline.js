// One pipeline: status, actions (admin), runs as charts and a table,
// checkpoints, its configuration (secrets redacted by the API) and its
// versions with a diff between any two.

import {api} from './api.js';
import {h, fill, trunc, badge, when, dur, pct, route, shortHash, numTd, keepFocus, relative} from './dom.js';
import {runChart} from './chart.js';
import {lineDiff, hunks} from './diff.js';
import {isAdmin, confirm, notify} from './ui.js';

export async function render(view, {name}) {
  let [p, runs, versions] = await Promise.all([api.pipeline(name), api.pipelineRuns(name), api.versions(name)]);

  const title = h('h1', {}, trunc(p.name, 'span', {class: 'title'}), h('span', {id: 'pipeline-status'}));
  const notes = h('div', {});
  const actions = isAdmin() ? h('section', {class: 'actions', id: 'actions', 'aria-labelledby': 'actions-title'}) : null;
  const props = h('dl', {class: 'props', id: 'summary'});
  const charts = h('div', {class: 'charts', id: 'run-charts'});
  const runsBox = h('div', {class: 'scroll'});
  const cpBox = h('div', {class: 'scroll'});
  const yaml = h('pre', {class: 'code', id: 'yaml', tabindex: 0, 'aria-label': 'Configuration of ' + p.name}, h('code', {}, p.yaml));
  const versionsBox = h('div', {});

  function drawHead() {
    title.querySelector('#pipeline-status').replaceChildren(badge(p.status));
    notes.replaceChildren();
    if (p.description) notes.append(h('p', {class: 'muted'}, p.description));
    if (p.problem) notes.append(h('p', {class: 'note', id: 'problem'}, p.problem));
    if (p.late) notes.append(h('p', {class: 'note'}, `Late: no successful run for ${dur(p.freshness_age_seconds)}, more than its freshness objective of ${dur(p.freshness_slo_seconds)}.`));
    if (actions) drawToggle();
    const last = p.last_run;
    props.replaceChildren(
      ...prop('Schedule', p.schedule || 'on demand (no schedule)'),
      ...prop('Next run', p.paused || p.quarantined ? p.status : when(p.next_run, {rel: true})),
      ...prop('Last run', last ? [badge(last.status), ' ', h('a', {href: route('runs', last.id), dataset: {key: 'last'}}, when(last.start)),
        ' ', h('span', {class: 'muted small'}, relTo(last.start))] : 'never'),
      ...prop('Last success', when(p.last_success, {rel: true})),
      ...prop('Freshness', p.freshness_slo_seconds ? `${dur(p.freshness_age_seconds)} since the last success, objective ${dur(p.freshness_slo_seconds)}` : 'no objective'),
      ...prop('Reject rate of the last run', last ? pct(p.reject_rate) : '—'),
      ...prop('Failures in a row', String(p.consecutive_failures)),
      ...prop('Running', p.running ? `${p.running} run(s) in flight` : 'no'),
      ...prop('Version', h('span', {class: 'mono', title: p.version}, shortHash(p.version))),
      ...prop('File', h('span', {class: 'mono'}, p.file)),
      ...prop('Catch-up policy', p.catch_up),
      ...prop('On a bad version', p.on_bad_version));
  }

  // The actions are built once, so a refresh neither moves the focus nor
  // wipes a backfill range being typed; only the pause/resume button
  // follows the pipeline's state.
  let toggleFor = null;
  function buildActions() {
    const runNow = h('button', {type: 'button', id: 'run-now', class: 'primary'}, 'Run now');
    runNow.addEventListener('click', () => act({
      title: 'Run now?', ok: 'Run now',
      message: `Start a run of ${p.name} now (it is queued if a run is in flight).`,
      call: () => api.trigger(p.name),
      done: (t) => `A run of ${p.name} is ${t.queued ? 'queued' : 'started'}.`,
    }));
    const toggle = h('span', {id: 'toggle'});
    const from = h('input', {type: 'datetime-local', id: 'bf-from', step: 1});
    const to = h('input', {type: 'datetime-local', id: 'bf-to', step: 1});
    const bf = h('button', {type: 'submit', id: 'backfill'}, 'Backfill…');
    const form = h('form', {id: 'backfill-form'},
      h('fieldset', {},
        h('legend', {}, 'Backfill a range of logical times (your time zone)'),
        h('div', {class: 'field'}, h('label', {for: 'bf-from'}, 'From'), from),
        h('div', {class: 'field'}, h('label', {for: 'bf-to'}, 'To'), to),
        bf));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const f = new Date(from.value), t = new Date(to.value);
      if (!from.value || !to.value || Number.isNaN(f.getTime()) || Number.isNaN(t.getTime())) {
        notify('Backfill needs both times.', {bad: true});
        return;
      }
      if (t < f) {
        notify('Backfill: "To" is before "From".', {bad: true});
        return;
      }
      act({
        title: 'Backfill?', ok: 'Backfill',
        message: `Run ${p.name} for every logical time of its schedule from ${f.toLocaleString()} to ${t.toLocaleString()} ` +
          `(UTC ${f.toISOString()} to ${t.toISOString()}). The live checkpoints are neither read nor moved.`,
        call: () => api.backfill(p.name, f.toISOString(), t.toISOString()),
        done: (r) => `Backfill of ${p.name}: ${r.logical_times.length} run(s) queued.`,
      });
    });
    actions.replaceChildren(
      h('h2', {class: 'visually-hidden', id: 'actions-title'}, 'Actions'),
      runNow, toggle, form);
  }

  function drawToggle() {
    const paused = p.paused || p.quarantined;
    if (toggleFor === paused) return;
    toggleFor = paused;
    const holder = actions.querySelector('#toggle');
    const hadFocus = holder.contains(document.activeElement);
    const btn = paused
      ? h('button', {type: 'button', id: 'resume'}, 'Resume')
      : h('button', {type: 'button', id: 'pause'}, 'Pause');
    btn.addEventListener('click', () => act(paused ? {
      title: 'Resume?', ok: 'Resume',
      message: `Resume ${p.name}: its schedule starts runs again${p.quarantined ? ' (it was quarantined after repeated failures)' : ''}.`,
      call: () => api.resume(p.name), done: () => `${p.name} is resumed.`,
    } : {
      title: 'Pause?', ok: 'Pause', danger: true,
      message: `Pause ${p.name}: no new run starts until it is resumed; a run in flight finishes.`,
      call: () => api.pause(p.name), done: () => `${p.name} is paused.`,
    }));
    holder.replaceChildren(btn);
    if (hadFocus) btn.focus();
  }

  async function act({title: t, message, ok, danger, call, done}) {
    if (!await confirm({title: t, message, ok, danger})) return;
    try {
      const res = await call();
      notify(done(res));
    } catch (e) {
      notify(`${t.replace(/\?$/, '')} refused: ${e.message}`, {bad: true});
    }
    await refresh();
  }

  function drawRuns() {
    charts.replaceChildren(
      chartFigure('Duration', runChart(runs, 'duration')),
      chartFigure('Rows written', runChart(runs, 'written')),
      chartFigure('Rows rejected', runChart(runs, 'rejected')));
    if (!runs.length) {
      runsBox.replaceChildren(h('p', {class: 'empty'}, 'No run yet.'));
      return;
    }
    runsBox.replaceChildren(h('table', {id: 'runs'},
      h('caption', {}, runs.length === 1 ? 'The only run so far' : `The last ${runs.length} runs, newest first`),
      h('thead', {}, h('tr', {}, ['Run', 'Status', 'Trigger', 'Logical time', 'Started', 'Duration'].map(c => h('th', {scope: 'col'}, c)),
        ['Read', 'Written', 'Rejected', 'Filtered'].map(c => h('th', {scope: 'col', class: 'num'}, c)),
        h('th', {scope: 'col'}, 'Error'))),
      h('tbody', {}, runs.map(r => h('tr', {dataset: {run: r.id}},
        h('td', {}, h('a', {href: route('runs', r.id), class: 'mono', dataset: {key: 'run:' + r.id}}, r.id)),
        h('td', {}, badge(r.status)),
        h('td', {}, r.trigger),
        h('td', {}, when(r.logical_time)),
        h('td', {}, when(r.start)),
        h('td', {}, dur(r.duration_seconds)),
        numTd(r.read), numTd(r.written), numTd(r.rejected), numTd(r.filtered),
        h('td', {class: 'err'}, r.error ? trunc(r.error) : ''))))));
  }

  function drawCheckpoints() {
    const entries = Object.entries(p.checkpoints || {}).sort(([a], [b]) => a.localeCompare(b));
    if (!entries.length) {
      cpBox.replaceChildren(h('p', {class: 'empty'}, 'No checkpoint yet: the next run reads from the start.'));
      return;
    }
    cpBox.replaceChildren(h('table', {id: 'checkpoints', class: 'fixed'},
      h('caption', {}, 'Where the next run resumes, per task'),
      h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, 'Task'), h('th', {scope: 'col'}, 'Position'))),
      h('tbody', {}, entries.map(([task, pos]) => h('tr', {},
        h('td', {class: 'mono'}, trunc(task)), h('td', {class: 'mono wrap'}, pos))))));
  }

  const contents = new Map(); // hash → content, versions never change
  async function content(hash) {
    if (!contents.has(hash)) contents.set(hash, (await api.version(p.name, hash)).content || '');
    return contents.get(hash);
  }

  function drawVersions() {
    if (!versions.length) {
      versionsBox.replaceChildren(h('p', {class: 'empty'}, 'No version has run yet.'));
      return;
    }
    const tbl = h('table', {id: 'versions'},
      h('caption', {}, 'Versions of the file that ran, newest first'),
      h('thead', {}, h('tr', {}, ['Version', 'First seen', 'Last seen', 'Verdict', 'Note'].map(c => h('th', {scope: 'col'}, c)))),
      h('tbody', {}, versions.map(v => h('tr', {},
        h('td', {class: 'mono', title: v.hash}, shortHash(v.hash), v.current ? h('span', {class: 'muted'}, ' (current)') : ''),
        h('td', {}, when(v.first_seen)), h('td', {}, when(v.last_seen)),
        h('td', {}, v.status ? badge(v.status) : h('span', {class: 'muted'}, 'not judged')),
        h('td', {class: 'wrap'}, v.reason || '')))));
    if (versions.length < 2) {
      versionsBox.replaceChildren(tbl, h('p', {class: 'muted'}, 'Only one version so far: nothing to compare.'));
      return;
    }
    const opt = (v) => h('option', {value: v.hash}, `${shortHash(v.hash)} · ${new Date(v.first_seen).toLocaleString()}${v.current ? ' (current)' : ''}`);
    const a = h('select', {id: 'diff-a'}, versions.map(opt));
    const b = h('select', {id: 'diff-b'}, versions.map(opt));
    a.value = versions[1].hash;
    b.value = versions[0].hash;
    const out = h('div', {id: 'diff-out', 'aria-live': 'polite'});
    const form = h('form', {class: 'toolbar', id: 'diff-form'},
      h('div', {class: 'field'}, h('label', {for: 'diff-a'}, 'Older'), a),
      h('div', {class: 'field'}, h('label', {for: 'diff-b'}, 'Newer'), b),
      h('button', {type: 'submit', id: 'compare'}, 'Compare'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        const [x, y] = await Promise.all([content(a.value), content(b.value)]);
        out.replaceChildren(...diffView(lineDiff(x, y), a.value, b.value));
      } catch (e) {
        out.replaceChildren(h('p', {class: 'error'}, e.message));
      }
    });
    versionsBox.replaceChildren(tbl, h('h3', {}, 'Compare two versions'), form, out);
  }

  let shownVersion = p.version;
  async function refresh(live = () => true) {
    const [np, nr] = await Promise.all([api.pipeline(name), api.pipelineRuns(name)]);
    if (!live()) return;
    p = np;
    runs = nr;
    keepFocus(view, () => {
      drawHead();
      drawRuns();
      drawCheckpoints();
    });
    if (p.version !== shownVersion) {
      shownVersion = p.version;
      yaml.firstChild.textContent = p.yaml;
      versions = await api.versions(name);
      if (live()) drawVersions();
    }
  }

  fill(view,
    h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'}, h('a', {href: '#/'}, 'Pipelines'), ' › ', trunc(p.name, 'span', {'aria-current': 'page'})),
    title, notes, actions,
    h('h2', {}, 'Summary'), props,
    h('h2', {}, 'Runs'), charts, runsBox,
    h('h2', {}, 'Checkpoints'), cpBox,
    h('h2', {}, 'Configuration'), h('p', {class: 'muted small'}, 'As loaded, secrets redacted.'), yaml,
    h('h2', {}, 'Versions'), versionsBox,
    h('p', {}, h('a', {href: '#/deadletters?' + new URLSearchParams({pipeline: p.name})}, `Dead letters of ${p.name}`)));
  if (actions) buildActions();
  drawHead();
  drawRuns();
  drawCheckpoints();
  drawVersions();
  return {refresh};
}

function relTo(iso) {
  return '(' + relative(new Date(iso)) + ')';
}

function prop(label, value) {
  return [h('dt', {}, label), h('dd', {}, value)];
}

function chartFigure(caption, svg) {
  return h('figure', {class: 'chart'}, h('figcaption', {}, caption), svg);
}

function diffView(diff, a, b) {
  const added = diff.filter(d => d.op === '+').length, removed = diff.filter(d => d.op === '-').length;
  const summary = h('p', {id: 'diff-summary'}, added || removed
    ? `${shortHash(a)} → ${shortHash(b)}: ${added} line(s) added, ${removed} removed.`
    : `${shortHash(a)} and ${shortHash(b)} have the same content.`);
  const pre = h('pre', {class: 'diff', id: 'diff', tabindex: 0, 'aria-label': `Changes from ${shortHash(a)} to ${shortHash(b)}`},
    hunks(diff).map(d => d.op === '…'
      ? h('span', {class: 'gap'}, `  … ${d.count} unchanged line(s)`)
      : h('span', {class: d.op === '+' ? 'add' : d.op === '-' ? 'del' : 'ctx'}, `${d.op} ${d.text}`)));
  return [summary, pre];
}
