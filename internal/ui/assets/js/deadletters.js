// Dead letters: filter by pipeline, run, step and text; read the original
// record and the error; replay or purge a selection (admin).

import {api} from './api.js';
import {h, fill, trunc, when, num, route} from './dom.js';
import {isAdmin, confirm, notify} from './ui.js';

const LIMITS = [100, 500, 1000];

export async function render(view, {params}) {
  const q = {
    pipeline: params.get('pipeline') || '',
    run: params.get('run') || '',
    step: params.get('step') || '',
    contains: params.get('contains') || '',
    limit: LIMITS.includes(Number(params.get('limit'))) ? Number(params.get('limit')) : 100,
  };
  const [pipelines, page] = await Promise.all([api.pipelines(), load(q)]);

  const names = pipelines.map(p => p.name);
  if (q.pipeline && !names.includes(q.pipeline)) names.push(q.pipeline);
  const fPipe = h('select', {id: 'f-pipeline', name: 'pipeline'},
    h('option', {value: ''}, 'Any pipeline'), names.sort().map(n => h('option', {value: n}, n)));
  fPipe.value = q.pipeline;
  const fRun = h('input', {type: 'text', id: 'f-run', name: 'run', value: q.run, autocomplete: 'off', spellcheck: 'false'});
  const fStep = h('input', {type: 'text', id: 'f-step', name: 'step', value: q.step, autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. source, validate[3]'});
  const fText = h('input', {type: 'search', id: 'f-contains', name: 'contains', value: q.contains, autocomplete: 'off'});
  const fLimit = h('select', {id: 'f-limit', name: 'limit'}, LIMITS.map(n => h('option', {value: n}, String(n))));
  fLimit.value = String(q.limit);
  const form = h('form', {class: 'toolbar', id: 'dlq-filter', role: 'search'},
    field('f-pipeline', 'Pipeline', fPipe),
    field('f-run', 'Run', fRun),
    field('f-step', 'Step', fStep),
    h('div', {class: 'field grow'}, h('label', {for: 'f-contains'}, 'Error or record text'), fText),
    field('f-limit', 'Show at most', fLimit),
    h('button', {type: 'submit', class: 'primary', id: 'f-apply'}, 'Apply'),
    h('button', {type: 'button', id: 'f-clear'}, 'Clear'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const next = {pipeline: fPipe.value, run: fRun.value.trim(), step: fStep.value.trim(), contains: fText.value.trim()};
    if (fLimit.value !== '100') next.limit = fLimit.value;
    go(next);
  });
  form.querySelector('#f-clear').addEventListener('click', () => go({}));

  const summary = h('p', {id: 'dlq-summary'});
  const tools = isAdmin() ? h('div', {class: 'actions', id: 'dlq-actions', role: 'group', 'aria-label': 'Act on dead letters'}) : null;
  const list = h('div', {class: 'scroll'});
  const selected = new Set();
  let current = page;

  function draw() {
    const filtered = q.pipeline || q.run || q.step || q.contains;
    summary.textContent = current.total
      ? `${num(current.total)} dead letter(s)${filtered ? ' match the filter' : ''}` +
        (current.total > current.items.length ? `; the newest ${num(current.items.length)} are shown.` : '.')
      : (filtered ? 'No dead letter matches the filter.' : 'No dead letters: every record loaded.');
    for (const id of [...selected]) if (!current.items.some(d => d.id === id)) selected.delete(id);
    list.replaceChildren(current.items.length ? deadLetterTable(current.items, {selectable: !!tools, selected, onChange: drawTools}) : '');
    drawTools();
  }

  function drawTools() {
    if (!tools) return;
    const n = selected.size;
    const replay = h('button', {type: 'button', id: 'replay-selected', class: 'primary', disabled: n === 0}, `Replay selected (${n})`);
    const purge = h('button', {type: 'button', id: 'purge-selected', class: 'danger', disabled: n === 0}, `Purge selected (${n})`);
    replay.addEventListener('click', () => replayOrPurge('replay', {ids: [...selected]}, n));
    purge.addEventListener('click', () => replayOrPurge('purge', {ids: [...selected]}, n));
    const filterSel = {pipeline: q.pipeline || undefined, run_id: q.run || undefined, step: q.step || undefined, contains: q.contains || undefined};
    const filtered = Object.values(filterSel).some(Boolean);
    const all = filtered && current.total > 0 ? [
      h('button', {type: 'button', id: 'replay-matching'}, `Replay all ${num(current.total)} matching`),
      h('button', {type: 'button', id: 'purge-matching', class: 'danger'}, `Purge all ${num(current.total)} matching`),
    ] : [];
    if (all.length) {
      all[0].addEventListener('click', () => replayOrPurge('replay', filterSel, current.total));
      all[1].addEventListener('click', () => replayOrPurge('purge', filterSel, current.total));
    }
    // Keep focus on the button the user was on when the counts change.
    const focusedId = tools.contains(document.activeElement) ? document.activeElement.id : '';
    tools.replaceChildren(replay, purge, ...all);
    if (focusedId) {
      const again = tools.querySelector('#' + focusedId);
      if (again && !again.disabled) again.focus();
    }
  }

  async function replayOrPurge(what, sel, n) {
    const which = sel.ids ? `${n} selected dead letter(s)` : `all ${n} dead letter(s) matching the filter`;
    const ok = what === 'replay'
      ? await confirm({title: 'Replay?', ok: 'Replay',
        message: `Send ${which} through the current version of their pipeline. Those that now load are written and removed from the dead letters; the others stay.`})
      : await confirm({title: 'Purge?', ok: 'Purge', danger: true,
        message: `Delete ${which} for good. Their records are not loaded and cannot be replayed afterwards.`});
    if (!ok) return;
    try {
      if (what === 'replay') {
        const r = await api.replay(sel);
        notify(`Replayed ${num(r.selected)}: ${num(r.written)} written, ${num(r.removed)} removed from the dead letters, ${num(r.rejected)} still rejected.`);
      } else {
        const r = await api.purge(sel);
        notify(`Purged ${num(r.purged)} dead letter(s).`);
      }
    } catch (e) {
      notify(`${what === 'replay' ? 'Replay' : 'Purge'} failed: ${e.message}`, {bad: true});
    }
    selected.clear();
    current = await load(q);
    draw();
  }

  fill(view, h('h1', {}, 'Dead letters'),
    h('p', {class: 'muted'}, 'Records that a run rejected, with the error and the original record. Replay sends them through the current version of their pipeline.'),
    form, summary, tools, list);
  draw();
  // No live refresh here: the list would move under a selection.
  return {};
}

function field(id, label, input) {
  return h('div', {class: 'field'}, h('label', {for: id}, label), input);
}

function go(q) {
  const p = new URLSearchParams(Object.entries(q).filter(([, v]) => v));
  location.hash = '#/deadletters' + (p.toString() ? '?' + p : '');
}

function load(q) {
  const p = {limit: q.limit || 100};
  for (const k of ['pipeline', 'run', 'step', 'contains']) if (q[k]) p[k] = q[k];
  return api.deadLetters(p);
}

// shortLoc keeps what tells a record apart: the file's name and the line
// (the whole location is in the title).
function shortLoc(loc) {
  const i = loc.lastIndexOf('/');
  return i >= 0 && i < loc.length - 1 ? '…/' + loc.slice(i + 1) : loc;
}

// deadLetterTable lists dead letters; with selectable, a checkbox per row
// and one for all, kept in the selected set.
export function deadLetterTable(items, {selectable = false, selected = new Set(), onChange = () => {}} = {}) {
  const boxes = [];
  let all = null;
  if (selectable) {
    all = h('input', {type: 'checkbox', id: 'select-all', 'aria-label': 'Select every dead letter shown'});
    all.checked = items.length > 0 && items.every(d => selected.has(d.id));
    all.addEventListener('change', () => {
      for (const b of boxes) {
        b.checked = all.checked;
        if (all.checked) selected.add(Number(b.value));
        else selected.delete(Number(b.value));
      }
      onChange();
    });
  }
  const rows = items.map(d => {
    let box = null;
    if (selectable) {
      box = h('input', {type: 'checkbox', value: d.id, class: 'dl-select', 'aria-label': `Select dead letter ${d.id}`});
      box.checked = selected.has(d.id);
      box.addEventListener('change', () => {
        if (box.checked) selected.add(d.id);
        else selected.delete(d.id);
        all.checked = boxes.every(b => b.checked);
        onChange();
      });
      boxes.push(box);
    }
    return h('tr', {dataset: {id: d.id}},
      selectable ? h('td', {}, box) : null,
      h('td', {class: 'num'}, String(d.id)),
      h('td', {}, trunc(d.pipeline, 'a', {href: route('pipelines', d.pipeline)})),
      h('td', {}, trunc(d.run_id, 'a', {href: route('runs', d.run_id), class: 'mono'})),
      h('td', {class: 'mono'}, trunc(d.step)),
      h('td', {class: 'mono'}, d.field ? trunc(d.field) : ''),
      h('td', {class: 'mono'}, h('span', {class: 'trunc', title: d.loc}, shortLoc(d.loc))),
      h('td', {class: 'wrap dl-error'}, d.error),
      h('td', {class: 'record'}, h('details', {}, h('summary', {class: 'mono'}, d.record), h('pre', {class: 'mono'}, d.record))),
      h('td', {}, when(d.created_at)));
  });
  return h('table', {class: 'fixed', id: 'deadletters'},
    h('caption', {}, 'Dead letters, newest first'),
    h('colgroup', {},
      selectable ? h('col', {class: 'w-box'}) : null,
      h('col', {class: 'w-id'}), h('col', {class: 'w-dpipe'}), h('col', {class: 'w-drun'}), h('col', {class: 'w-step'}),
      h('col', {class: 'w-field'}), h('col', {class: 'w-loc'}), h('col', {class: 'w-err'}), h('col', {class: 'w-rec'}), h('col', {class: 'w-created'})),
    h('thead', {}, h('tr', {},
      selectable ? h('th', {scope: 'col'}, all) : null,
      h('th', {scope: 'col', class: 'num'}, 'ID'),
      ...['Pipeline', 'Run', 'Step', 'Field', 'Location', 'Error', 'Original record', 'Rejected at'].map(c => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, rows));
}
