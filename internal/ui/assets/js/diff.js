// A line diff of two texts (two versions of a pipeline file): the longest
// common subsequence of lines, after the common head and tail are set
// aside. Pipeline files are small; past MAX_CELLS the middle is shown as
// removed then added rather than spending the viewer's memory.

const MAX_CELLS = 4_000_000;

// lineDiff returns [{op: ' ' | '-' | '+', text}] turning a into b.
export function lineDiff(a, b) {
  const x = splitLines(a), y = splitLines(b);
  let head = 0;
  while (head < x.length && head < y.length && x[head] === y[head]) head++;
  let tail = 0;
  while (tail < x.length - head && tail < y.length - head && x[x.length - 1 - tail] === y[y.length - 1 - tail]) tail++;
  const xs = x.slice(head, x.length - tail), ys = y.slice(head, y.length - tail);
  const out = x.slice(0, head).map(text => ({op: ' ', text}));
  out.push(...middle(xs, ys));
  out.push(...x.slice(x.length - tail).map(text => ({op: ' ', text})));
  return out;
}

function splitLines(t) {
  if (!t) return [];
  const lines = t.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function middle(xs, ys) {
  const n = xs.length, m = ys.length;
  if (n === 0) return ys.map(text => ({op: '+', text}));
  if (m === 0) return xs.map(text => ({op: '-', text}));
  if ((n + 1) * (m + 1) > MAX_CELLS) {
    return [...xs.map(text => ({op: '-', text})), ...ys.map(text => ({op: '+', text}))];
  }
  // lcs[i][j]: length of the LCS of xs[i:] and ys[j:].
  const w = m + 1;
  const lcs = new Uint32Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * w + j] = xs[i] === ys[j] ? lcs[(i + 1) * w + j + 1] + 1 : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
    }
  }
  const out = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (xs[i] === ys[j]) {
      out.push({op: ' ', text: xs[i]}); i++; j++;
    } else if (lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) {
      out.push({op: '-', text: xs[i]}); i++;
    } else {
      out.push({op: '+', text: ys[j]}); j++;
    }
  }
  while (i < n) out.push({op: '-', text: xs[i++]});
  while (j < m) out.push({op: '+', text: ys[j++]});
  return out;
}

// hunks folds runs of unchanged lines longer than 2*context+1 into a gap
// marker {op: '…', count}.
export function hunks(diff, context = 3) {
  const out = [];
  let i = 0;
  while (i < diff.length) {
    if (diff[i].op !== ' ') { out.push(diff[i++]); continue; }
    let j = i;
    while (j < diff.length && diff[j].op === ' ') j++;
    const run = diff.slice(i, j);
    const first = i === 0, last = j === diff.length;
    const keepHead = first ? 0 : context, keepTail = last ? 0 : context;
    if (run.length > keepHead + keepTail + 1) {
      out.push(...run.slice(0, keepHead));
      out.push({op: '…', count: run.length - keepHead - keepTail});
      out.push(...run.slice(run.length - keepTail));
    } else {
      out.push(...run);
    }
    i = j;
  }
  return out;
}
