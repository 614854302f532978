"""The sliding window as a web page: :func:`explain` writes one self-contained HTML file that
steps (and plays) a convolution layer's window over its input.

The page shows, for every output element, the padded input with the window highlighted (one grid
per input channel of the filter's group, one grid per kernel plane for volumes), the kernel
beside it, each product added to a running sum, and the output element beside them, written
exactly as ``imgfilt explain`` writes it in a terminal. Padded cells are marked with the input
cell they copy (or as zeros), read from :func:`imgfilt.padding.index_map`, the map the engine
itself reads. The output grid holds what :func:`imgfilt.conv` returns.

The page needs no network: its script and style are inline, its numbers a JSON literal.
"""
from __future__ import annotations

import html
import json
from typing import Any, Optional

import numpy as np

from .convolution import IntOrTuple, Padding, conv, plan
from .padding import index_map

__all__ = ["explain", "Page", "read_layer", "DEMO_INPUT", "DEMO_KERNEL", "MAX_CELLS"]

#: The default example: the 3x3 input and 2x2 kernel of *Dive into Deep Learning*, section 7.2.
DEMO_INPUT = np.arange(9.0).reshape(3, 3)
DEMO_KERNEL = np.array([[0.0, 1.0], [2.0, 3.0]])

#: The page is for teaching examples: at most this many padded input cells, weights and
#: output elements (each), so the file stays small and the browser quick.
MAX_CELLS = 20_000


class Page(str):
    """The page of :func:`explain`: a ``str`` holding the whole HTML document, which Jupyter
    shows, working, in a frame of ``height`` pixels."""

    height: int = 600

    def _repr_html_(self) -> str:
        return (f'<iframe title="imgfilt explain" style="width:100%;height:{self.height}px;'
                f'border:1px solid #ddd" srcdoc="{html.escape(str(self), quote=True)}"></iframe>')


def read_layer(x: Any, weight: Any, ndim: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Read an example as ``explain`` does: ``x`` as ``(*S)`` or ``(C_in, *S)``, ``weight`` as
    ``(*K)``, ``(C_in, *K)`` or ``(C_out, C_in/groups, *K)``, with ``ndim`` spatial axes.

    Returns float64 arrays ``(C_in, *S)`` and ``(C_out, C_in/groups, *K)``.

    Examples
    --------
    >>> x, w = read_layer(np.arange(9.0).reshape(3, 3), [[0, 1], [2, 3]])
    >>> x.shape, w.shape
    ((1, 3, 3), (1, 1, 2, 2))
    """
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim must be 1, 2 or 3 spatial axes, got {ndim!r}")
    x_arr = np.asarray(x, dtype=np.float64)
    w_arr = np.asarray(weight, dtype=np.float64)
    axes = ("W",) if ndim == 1 else ("H", "W") if ndim == 2 else ("D", "H", "W")
    if x_arr.ndim not in (ndim, ndim + 1):
        raise ValueError(f"x must be ({', '.join(axes)}) or (C_in, {', '.join(axes)}) for "
                         f"ndim={ndim}, got shape {x_arr.shape} (ndim= gives the number of "
                         "spatial axes: 1, 2 or 3)")
    if w_arr.ndim not in (ndim, ndim + 1, ndim + 2):
        k = ", ".join("k" + a for a in axes)
        raise ValueError(f"weight must be ({k}), (C_in, {k}) or (C_out, C_in/groups, {k}) for "
                         f"ndim={ndim}, got shape {w_arr.shape} (ndim= gives the number of "
                         "spatial axes: 1, 2 or 3)")
    x_arr = x_arr.reshape((1,) * (ndim + 1 - x_arr.ndim) + x_arr.shape)
    w_arr = w_arr.reshape((1,) * (ndim + 2 - w_arr.ndim) + w_arr.shape)
    for name, array in (("x", x_arr), ("weight", w_arr)):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} holds NaN or infinity; the page shows finite numbers only")
    return x_arr, w_arr


def explain(
    x: Any = None,
    weight: Any = None,
    bias: Any = None,
    *,
    ndim: int = 2,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    padding_mode: str = "zeros",
    dilation: IntOrTuple = 1,
    groups: int = 1,
    title: Optional[str] = None,
) -> Page:
    """An HTML page that steps a convolution layer's window over its input, element by element.

    Parameters
    ----------
    x : array_like, optional
        ``(*S)`` or ``(C_in, *S)`` with ``ndim`` spatial axes; default the 3x3 example of *Dive
        into Deep Learning*.
    weight : array_like, optional
        ``(*K)``, ``(C_in, *K)`` or ``(C_out, C_in/groups, *K)``; default its 2x2 kernel.
    bias : array_like, optional
        A number or one per output channel; the page writes a bias term only when one is given.
    ndim : {1, 2, 3}
        Number of spatial axes.
    stride, padding, padding_mode, dilation, groups
        As in :func:`imgfilt.conv`.
    title : str, optional
        The page title.

    Returns
    -------
    Page
        A ``str``: a complete HTML document (inline script and style, no network access). Save
        it with ``open("out.html", "w", encoding="utf-8").write(page)`` and open it in a
        browser; in Jupyter it shows itself in a frame.

    Raises
    ------
    ValueError
        For shapes ``conv`` refuses, non-finite numbers, or an example larger than
        :data:`MAX_CELLS` cells.

    Examples
    --------
    >>> page = explain()
    >>> page.startswith("<!DOCTYPE html>"), '"out":[19.0,25.0,37.0,43.0]' in page
    (True, True)
    """
    x_arr, w_arr = read_layer(DEMO_INPUT if x is None else x,
                              DEMO_KERNEL if weight is None else weight, ndim)
    p = plan(x_arr.shape, x_arr.dtype, w_arr.shape, stride=stride, padding=padding,
             padding_mode=padding_mode, dilation=dilation, groups=groups)
    has_bias = bias is not None
    bias_arr = np.zeros(p.out_channels)
    if has_bias:
        values = np.asarray(bias, dtype=np.float64).reshape(-1)
        if values.size not in (1, p.out_channels):
            raise ValueError(f"bias needs 1 or C_out = {p.out_channels} values, got {values.size}")
        if not np.all(np.isfinite(values)):
            raise ValueError("bias holds NaN or infinity")
        bias_arr = np.broadcast_to(values, (p.out_channels,)).astype(np.float64)

    maps = [index_map(size, before, after, p.padding_mode)
            for size, (before, after) in zip(p.in_shape, p.padding)]
    padded_shape = tuple(len(m) for m in maps)
    out_size = p.out_channels * int(np.prod(p.out_shape))
    for what, count in (("padded input", p.in_channels * int(np.prod(padded_shape))),
                        ("weight", w_arr.size), ("output", out_size)):
        if count > MAX_CELLS:
            raise ValueError(f"the {what} has {count} cells; the page is for teaching examples "
                             f"of at most {MAX_CELLS} (use a smaller input or kernel)")
    # The padded input, gathered through the engine's index maps (-1: a zero).
    gathered = x_arr
    for axis, m in enumerate(maps, start=1):
        gathered = np.take(gathered, np.maximum(m, 0), axis=axis)
        shape = [1] * gathered.ndim
        shape[axis] = len(m)
        gathered = np.where((m >= 0).reshape(shape), gathered, 0.0)
    out = conv(x_arr, w_arr, bias_arr, stride=p.stride, padding=p.padding,
               padding_mode=p.padding_mode, dilation=p.dilation, groups=p.groups)

    lift = (1,) * (3 - p.ndim)  # every example drawn as a volume of D x H x W
    data = {
        "ndim": p.ndim,
        "cin": p.in_channels,
        "cout": p.out_channels,
        "groups": p.groups,
        "inShape": lift + tuple(p.in_shape),
        "padShape": lift + padded_shape,
        "kShape": lift + tuple(p.kernel_shape),
        "outShape": lift + tuple(p.out_shape),
        "stride": lift + tuple(p.stride),
        "dilation": lift + tuple(p.dilation),
        "padding": [[0, 0]] * (3 - p.ndim) + [list(pair) for pair in p.padding],
        "mode": p.padding_mode,
        "maps": [[0]] * (3 - p.ndim) + [m.tolist() for m in maps],
        "x": gathered.reshape(-1).tolist(),
        "w": w_arr.reshape(-1).tolist(),
        "bias": bias_arr.tolist(),
        "hasBias": has_bias,
        "out": out.reshape(-1).tolist(),
    }
    heading = title or _default_title(p)
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    page = Page(_PAGE.replace("%TITLE%", html.escape(heading))
                .replace("%DATA%", payload)
                .replace("%STYLE%", _STYLE)
                .replace("%SCRIPT%", _SCRIPT))
    # About 30 px per grid row, one grid per input channel of a group and kernel plane, then
    # the output panel (below the grids in a narrow frame), the sum and the legend; at most
    # about two screenfuls (the frame scrolls beyond).
    grid_rows = padded_shape[-2] if p.ndim > 1 else 1
    grids = (p.in_channels // p.groups) * (p.kernel_shape[0] if p.ndim == 3 else 1)
    out_rows = p.out_shape[-2] if p.ndim > 1 else 1
    page.height = min(1800, 420 + grids * (30 * grid_rows + 30) + 30 * out_rows)
    return page


def _default_title(p: Any) -> str:
    dims = "x".join(str(s) for s in p.in_shape)
    kern = "x".join(str(s) for s in p.kernel_shape)
    return (f"imgfilt explain: {p.in_channels} channel(s) of {dims}, {p.out_channels} filter(s) "
            f"of {kern}")


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>%TITLE%</title>
<style>%STYLE%</style>
</head>
<body>
<h1>%TITLE%</h1>
<p id="summary"></p>
<p class="formula" id="formula"></p>
<div class="controls">
  <button id="first" title="first output element">&laquo; first</button>
  <button id="prev" title="previous step">&#x25C0; back</button>
  <button id="next" title="next step">next &#x25B6;</button>
  <button id="play">play</button>
  <label><input type="checkbox" id="taps"> one product at a time</label>
  <label>output channel <select id="outch"></select></label>
  <span id="where" class="where"></span>
</div>
<div class="main">
<div id="stage"></div>
<div class="side">
<p>Running sum: <b id="running"></b><br>output element <b id="value"></b><br>
   (<span id="conv"></span>)</p>
<div id="output"></div>
</div>
</div>
<h2>The sum, as <code>imgfilt explain</code> prints it</h2>
<pre id="equation"></pre>
<div class="legend" id="legend"></div>
<script type="application/json" id="data">%DATA%</script>
<script>%SCRIPT%</script>
</body>
</html>
"""

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222}
h1{font-size:1.25em} h2{font-size:1.05em;margin:.8em 0 .3em}
.formula{font-family:monospace} .where{font-family:monospace;margin-left:1em}
.controls button{font-size:1em;margin-right:.3em} .controls label{margin-right:1em}
.row{display:flex;flex-wrap:wrap;align-items:flex-start;gap:1.2em;margin:.6em 0}
.block{display:inline-block} .block .cap{font-size:.85em;color:#555;margin-bottom:.2em}
table.grid{border-collapse:collapse;font-family:monospace;font-size:.9em}
table.grid td{border:1px solid #bbb;min-width:2.2em;height:1.9em;text-align:center;padding:0 .2em;
  position:relative}
td.pad{background:#eef0f5;color:#667;border-style:dashed}
td.pad small{display:block;font-size:.6em;color:#889;line-height:1}
td.win{background:#ffe9a8;outline:2px solid #d08a00;outline-offset:-2px}
td.pad.win{background:#f3dc9a}
td.tap{background:#ffb347 !important}
td.src{box-shadow:inset 0 0 0 2px #2a7ae2}
td.done{color:#222} td.todo{color:#ccc} td.cur{background:#ffe9a8;outline:2px solid #d08a00}
td.kpos{background:rgba(200,60,40,var(--a))} td.kneg{background:rgba(40,90,200,var(--a))}
td.ktap{outline:2px solid #d08a00;outline-offset:-2px}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto}
.legend{font-size:.85em;color:#555;margin-top:1em}
.main{display:flex;flex-wrap:wrap;align-items:flex-start;gap:2em}
.side{position:sticky;top:.5em;background:#fffdf5;border:1px solid #e6d9a8;padding:.4em .8em}
"""

_SCRIPT = r"""
(function(){
const D = JSON.parse(document.getElementById('data').textContent);
// Numbers as imgfilt explain writes them (Python's  f"{v:.{digits}g}", integers bare).
function num(v, digits){
  if (v === 0) return '0';
  if (Number.isInteger(v) && Math.abs(v) < 1e12) return String(v);
  const e = parseInt(v.toExponential(digits - 1).split('e')[1], 10);
  if (e < -4 || e >= digits) {
    let [m, ex] = v.toExponential(digits - 1).split('e');
    if (m.indexOf('.') >= 0) m = m.replace(/0+$/, '').replace(/\.$/, '');
    const sign = ex[0] === '-' ? '-' : '+';
    ex = ex.replace(/^[+-]/, '');
    if (ex.length < 2) ex = '0' + ex;
    return m + 'e' + sign + ex;
  }
  let s = v.toFixed(Math.max(0, digits - 1 - e));
  if (s.indexOf('.') >= 0) s = s.replace(/0+$/, '').replace(/\.$/, '');
  return s;
}
function show(v){ const t = num(v, 6); return t[0] === '-' ? '(' + t + ')' : t; }
const [PD, PH, PW] = D.padShape, [KD, KH, KW] = D.kShape, [OD, OH, OW] = D.outShape;
const [SD, SH, SW] = D.stride, [DD, DH, DW] = D.dilation;
const CG = D.cin / D.groups, OG = D.cout / D.groups, K = KD * KH * KW, NOUT = OD * OH * OW;
const lead = D.ndim === 3 ? 0 : D.ndim === 2 ? 1 : 2;   // lifted axes not shown
const X = (c, z, y, x) => D.x[((c * PD + z) * PH + y) * PW + x];
const Wt = (o, c, m, n, q) => D.w[(((o * CG + c) * KD + m) * KH + n) * KW + q];
const OUT = (o, i) => D.out[o * NOUT + i];
let state = {o: 0, i: 0, tap: CG * K}, timer = null;

function coords(i){ return [Math.floor(i / (OH * OW)), Math.floor(i / OW) % OH, i % OW]; }
function shown(list){ return list.slice(lead); }
function where(o, i){
  const c = shown(coords(i));
  return 'out[' + (D.cout > 1 ? o + ', ' : '') + c.join(', ') + ']';
}
// The products of one output element, in the order imgfilt explain adds them.
function terms(o, i){
  const [z, y, x] = coords(i), g = Math.floor(o / OG), list = [];
  for (let c = 0; c < CG; c++) for (let m = 0; m < KD; m++) for (let n = 0; n < KH; n++)
    for (let q = 0; q < KW; q++) {
      const pz = z * SD + m * DD, py = y * SH + n * DH, px = x * SW + q * DW;
      list.push({c: c, ch: g * CG + c, m: m, n: n, q: q, pz: pz, py: py, px: px,
                 xv: X(g * CG + c, pz, py, px), wv: Wt(o, c, m, n, q)});
    }
  return list;
}
function equation(o, i, list){
  const name = where(o, i), pad = ' '.repeat(name.length), sums = [], lines = [];
  for (let c = 0; c < CG; c++) {
    const part = list.slice(c * K, (c + 1) * K);
    let total = 0;
    for (const t of part) total += t.xv * t.wv;
    sums.push(total);
    lines.push([part.map(t => show(t.xv) + '\u00d7' + show(t.wv)).join(' + '), total]);
  }
  let value = 0;
  for (const s of sums) value += s;
  value += D.bias[o];
  if (D.cin === 1 && D.groups === 1 && !D.hasBias)
    return {text: name + ' = ' + lines[0][0] + ' = ' + num(value, 8), value: value};
  const out = [];
  lines.forEach(([text, total], c) => {
    const label = CG > 1 || D.cin > 1 ? 'channel ' + list[c * K].ch + ': ' : '';
    out.push((c === 0 ? name + ' =' : pad + ' +') + ' ' + label + text + ' = ' + num(total, 8));
  });
  out.push(pad + ' + bias ' + num(D.bias[o], 8));
  out.push(pad + ' = ' + num(value, 8));
  return {text: out.join('\n'), value: value};
}
function srcLabel(z, y, x){
  const idx = [D.maps[0][z], D.maps[1][y], D.maps[2][x]];
  const pos = [z - D.padding[0][0], y - D.padding[1][0], x - D.padding[2][0]];
  const inside = pos.every((p, a) => p >= 0 && p < D.inShape[a]);
  if (inside) return null;
  if (idx.some(v => v < 0)) return {text: 'zero', idx: null};
  return {text: 'x[' + shown(idx).join(',') + ']', idx: idx};
}
function el(tag, cls, text){
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function grid(rows, cols, cell){
  const t = el('table', 'grid');
  for (let r = 0; r < rows; r++) {
    const tr = el('tr');
    for (let q = 0; q < cols; q++) { const td = el('td'); cell(td, r, q); tr.appendChild(td); }
    t.appendChild(tr);
  }
  return t;
}
function block(caption, table){
  const b = el('div', 'block'); b.appendChild(el('div', 'cap', caption)); b.appendChild(table);
  return b;
}
function render(){
  const {o, i, tap} = state, list = terms(o, i), [z, y, x] = coords(i);
  const eq = equation(o, i, list);
  const cur = tap < list.length ? list[tap] : null;
  const inWin = new Set(list.map(t => t.ch + ':' + t.pz + ':' + t.py + ':' + t.px));
  const stage = document.getElementById('stage');
  stage.textContent = '';
  const g = Math.floor(o / OG);
  let wmax = 0;
  for (let c = 0; c < CG; c++) for (let k = 0; k < K; k++)
    wmax = Math.max(wmax, Math.abs(D.w[(o * CG + c) * K + k]));
  for (let c = 0; c < CG; c++) {
    const ch = g * CG + c;
    for (let m = 0; m < KD; m++) {
      const pz = z * SD + m * DD, row = el('div', 'row');
      const planeName = D.ndim === 3 ? ', plane ' + pz + ' of the padded volume' : '';
      const padName = D.padding.some(p => p[0] || p[1]) ? 'xpad' : 'x';
      row.appendChild(block(padName + ' channel ' + ch + planeName, grid(PH, PW, (td, r, q) => {
        const v = X(ch, pz, r, q), src = srcLabel(pz, r, q);
        td.textContent = num(v, 6);
        td.id = 'x-' + ch + '-' + pz + '-' + r + '-' + q;
        if (src) {
          td.classList.add('pad');
          td.title = D.mode + ' padding: ' + (src.idx ? 'a copy of ' + src.text : 'a zero');
          td.appendChild(el('small', null, src.idx ? '=' + src.text : 'pad 0'));
          if (src.idx) td.dataset.src = 'x-' + ch + '-' + (src.idx[0] + D.padding[0][0]) + '-' +
            (src.idx[1] + D.padding[1][0]) + '-' + (src.idx[2] + D.padding[2][0]);
        }
        if (inWin.has(ch + ':' + pz + ':' + r + ':' + q)) td.classList.add('win');
        if (cur && cur.ch === ch && cur.pz === pz && cur.py === r && cur.px === q)
          td.classList.add('tap');
      })));
      const kName = 'w[' + o + ', ' + c + (D.ndim === 3 ? ', ' + m : '') + ']';
      row.appendChild(block(kName, grid(KH, KW, (td, n, q) => {
        const v = Wt(o, c, m, n, q);
        td.textContent = num(v, 6);
        td.classList.add(v >= 0 ? 'kpos' : 'kneg');
        td.style.setProperty('--a', wmax ? (0.08 + 0.5 * Math.abs(v) / wmax).toFixed(3) : 0);
        if (cur && cur.c === c && cur.m === m && cur.n === n && cur.q === q)
          td.classList.add('ktap');
      })));
      stage.appendChild(row);
    }
  }
  // The running sum: products added so far (all of them when stepping element by element).
  let running = 0;
  for (let k = 0; k < Math.min(tap + 1, list.length); k++) running += list[k].xv * list[k].wv;
  const complete = tap >= list.length - 1;
  if (complete) running = eq.value;
  document.getElementById('equation').textContent = eq.text;
  document.getElementById('running').textContent = num(running, 8) +
    (complete ? '' : ' after ' + (tap + 1) + ' of ' + list.length + ' products' +
     (cur ? ' (' + show(cur.xv) + '\u00d7' + show(cur.wv) + ')' : ''));
  const value = document.getElementById('value');
  value.textContent = complete ? num(eq.value, 8) : '\u2026';
  value.dataset.value = complete ? String(eq.value) : '';
  const engine = OUT(o, i);
  const conv = document.getElementById('conv');
  conv.textContent = 'imgfilt.conv gives ' + num(engine, 8);
  conv.dataset.value = String(engine);
  document.getElementById('where').textContent = where(o, i) +
    ' (' + (i + 1) + ' of ' + NOUT + ')';
  document.getElementById('where').dataset.index = String(i);
  const outDiv = document.getElementById('output');
  outDiv.textContent = '';
  const out = el('div', 'row');
  for (let oc = g * OG; oc < (g + 1) * OG; oc++) {
    const title = 'out channel ' + oc + (D.ndim === 3 ? ', plane ' + z : '');
    out.appendChild(block(title, grid(OH, OW, (td, r, q) => {
      const k = (z * OH + r) * OW + q;
      td.id = 'out-' + oc + '-' + k;
      td.dataset.value = String(OUT(oc, k));
      const doneHere = oc < o || (oc === o && (k < i || (k === i && complete)));
      td.textContent = doneHere ? num(OUT(oc, k), 6) : '?';
      td.classList.add(doneHere ? 'done' : 'todo');
      if (oc === o && k === i) td.classList.add('cur');
      td.style.cursor = 'pointer';
      td.onclick = () => { stop(); state = {o: oc, i: k, tap: CG * K}; sync(); render(); };
    })));
  }
  outDiv.appendChild(out);
}
function sync(){ document.getElementById('outch').value = String(state.o); }
function tapsMode(){ return document.getElementById('taps').checked; }
function step(delta){
  const total = CG * K;
  let {o, i, tap} = state;
  if (tapsMode()) {
    tap = Math.min(tap, total - 1) + delta;
    if (tap >= total) { tap = 0; i += 1; }
    if (tap < 0) { tap = total - 1; i -= 1; }
  } else { i += delta; tap = total; }
  if (i >= NOUT) { i = 0; o = (o + 1) % D.cout; }
  if (i < 0) { o = (o - 1 + D.cout) % D.cout; i = NOUT - 1; }
  state = {o: o, i: i, tap: tap};
  sync(); render();
}
function stop(){ if (timer) { clearInterval(timer); timer = null; } document.getElementById('play').textContent = 'play'; }
document.getElementById('next').onclick = () => { stop(); step(1); };
document.getElementById('prev').onclick = () => { stop(); step(-1); };
document.getElementById('first').onclick = () => { stop(); state = {o: state.o, i: 0, tap: tapsMode() ? 0 : CG * K}; render(); };
document.getElementById('play').onclick = () => {
  if (timer) { stop(); return; }
  document.getElementById('play').textContent = 'pause';
  timer = setInterval(() => step(1), tapsMode() ? 500 : 900);
};
document.getElementById('taps').onchange = () => {
  state.tap = tapsMode() ? 0 : CG * K; render();
};
const sel = document.getElementById('outch');
for (let o = 0; o < D.cout; o++) { const opt = el('option', null, String(o)); opt.value = String(o); sel.appendChild(opt); }
sel.onchange = () => { stop(); state = {o: parseInt(sel.value, 10), i: 0, tap: CG * K}; render(); };
document.addEventListener('mouseover', ev => {
  document.querySelectorAll('td.src').forEach(td => td.classList.remove('src'));
  const t = ev.target.closest && ev.target.closest('td');
  if (t && t.dataset.src) { const s = document.getElementById(t.dataset.src); if (s) s.classList.add('src'); }
});
const axes = ['D', 'H', 'W'].slice(lead), sz = a => shown(a).join('x');
const padText = D.padding.slice(lead).map(p => '(' + p[0] + ', ' + p[1] + ')').join(', ');
document.getElementById('summary').textContent = 'x: ' + D.cin + ' channel(s) of ' + sz(D.inShape) +
  ' (' + axes.join(' x ') + '); w: ' + D.cout + ' filter(s) of ' + CG + 'x' + sz(D.kShape) +
  ' (C_in/groups x k' + axes.join(' x k') + ')' + (D.groups > 1 ? ', groups ' + D.groups : '') +
  '; padding ' + padText + ' (' + D.mode + '), stride ' + shown(D.stride).join('x') +
  ', dilation ' + shown(D.dilation).join('x') + '; out: ' + D.cout + 'x' + sz(D.outShape);
const idx = ['y', 'x'], letters = D.ndim === 1 ? ['x'] : D.ndim === 2 ? ['y', 'x'] : ['z', 'y', 'x'];
const kl = D.ndim === 1 ? ['n'] : D.ndim === 2 ? ['m', 'n'] : ['l', 'm', 'n'];
const s = shown(D.stride), d = shown(D.dilation);
document.getElementById('formula').textContent = 'out[o, ' + letters.join(', ') + '] = b[o] + \u03a3_c ' +
  kl.map(k => '\u03a3_' + k).join(' ') + ' w[o, c, ' + kl.join(', ') + '] \u00b7 xpad[g(o)\u00b7C_in/groups + c, ' +
  letters.map((l, a) => l + '\u00b7' + s[a] + ' + ' + kl[a] + '\u00b7' + d[a]).join(', ') + ']';
document.getElementById('legend').textContent = 'Dashed grey cells are padding (' + D.mode +
  '): "pad 0" is a zero, "=x[...]" the input cell it copies (hover to see it). The window is ' +
  'yellow, the current product orange; kernel cells are red for positive and blue for negative ' +
  'weights, stronger for larger ones. Click an output cell to go there.';
// For tests and the curious: every output element as the page sums it, and its equation.
window.explainPage = {
  sums: () => { const all = []; for (let o = 0; o < D.cout; o++) for (let i = 0; i < NOUT; i++)
    all.push(equation(o, i, terms(o, i)).value); return all; },
  equation: (o, i) => equation(o, i, terms(o, i)).text,
};
render();
})();
"""
