"""Take a run home: one self-contained HTML file that replays a run without the app (a step slider over every lane, the
JSON records inside). Pure functions on the records the API returns; no Gradio, no pipelines, nothing from the network:
the file's own Content-Security-Policy forbids any fetch, its images are data URIs, its script is inline.

    html = compare_html(records, prompt)            # the records of a /compare run
    html = text_diffusion_html(records, prompt, text)  # the records of a /text_diffusion (or _infill) run
    path = write_export("compare", html)            # a fresh file in the exports folder (old ones deleted)
"""

import base64
import html
import json
import os
import re
import tempfile
import time
from datetime import UTC, datetime

EXPORT_DIR = os.path.join(tempfile.gettempdir(), "diffusion-vs-llm-exports")
EXPORT_TTL_S = 15 * 60  # an export is fetched at once (Gradio copies it into its cache); older files go
MASK_GLYPH, END_GLYPH = "▒", "·"
SPECIAL_TOKENS = {"<|im_end|>": "end of reply", "<|endoftext|>": "end of text", "<|im_start|>": "start of a turn",
                  "</s>": "end of text", "<eos>": "end of text", "<|eot_id|>": "end of reply"}  # as demo/widgets.py
MAX_STEPS, MAX_LENGTH, MAX_TEXT = 4096, 4096, 20_000  # what an export takes: well above any run the app makes
PNG_URI = re.compile(r"data:image/png;base64,[A-Za-z0-9+/]*={0,2}")
WORD = re.compile(r"[^\W_]+|[^\w\s]")  # a word-level tokenizer's words (the bundled text-diffusion model's)


def readable(token: str) -> str:
    """A token as a person reads it (as demo/widgets.py): quoted so its spaces show, a newline as ↵, a special token
    as words."""
    if token in SPECIAL_TOKENS:
        return f"[{SPECIAL_TOKENS[token]}]"
    return "'" + token.replace("\n", "↵").replace("\t", "⇥") + "'"


class ExportError(ValueError):
    """Records an export cannot replay; `field` is the endpoint's parameter (the validator marks it), the message the
    place inside it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


# -- checks: the shape of the records, named to the field ---------------------------------------------------------
def _need(ok: bool, where: str, what: str, value=None, field: str = "records") -> None:
    if not ok:
        got = "" if value is None else f"; got {type(value).__name__} {str(value)[:40]!r}"
        raise ExportError(field, f"`{where}` must be {what}{got}.")


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value, optional: bool = True) -> bool:
    return (optional and value is None) or (isinstance(value, int | float) and not isinstance(value, bool))


def _items(records: dict, key: str, where: str, optional: bool = False) -> list:
    value = records.get(key)
    value = [] if optional and value is None else value
    _need(isinstance(value, list), f"{where}.{key}", "a list of step records", value)
    _need(len(value) <= MAX_STEPS, f"{where}.{key}", f"at most {MAX_STEPS} steps long")
    for i, item in enumerate(value):
        _need(isinstance(item, dict), f"{where}.{key}[{i}]", "an object (one step's record)", item)
        _need(_integer(item.get("step")), f"{where}.{key}[{i}].step", "an integer", item.get("step"))
    return value


def _tokens(items, where: str, length: int, revised: bool = False) -> None:
    _need(isinstance(items, list), where, "a list", items)
    for j, c in enumerate(items):
        at = f"{where}[{j}]"
        _need(isinstance(c, dict), at, "an object", c)
        _need(_integer(c.get("position")) and 0 <= c["position"] < length, f"{at}.position",
              f"an integer from 0 to {length - 1} (a position on the canvas)", c.get("position"))
        _need(isinstance(c.get("token"), str), f"{at}.token", "text", c.get("token"))
        if revised:
            _need(isinstance(c.get("previous", ""), str), f"{at}.previous", "text", c.get("previous"))


def _text(name: str, value, limit: int = MAX_TEXT) -> str:
    _need(isinstance(value, str) and len(value) <= limit, name, f"text of at most {limit} characters", value, field=name)
    return value


def _canvas_length(steps: list, run: dict | None = None) -> int:
    """The canvas length: the run's gen_length, else one confidence per position, else what step 1 left masked plus
    what it committed (a run that starts fully masked)."""
    if run and _integer(run.get("gen_length")):
        return run["gen_length"]
    first = steps[0] if steps else {}
    if isinstance(first.get("confidence"), list):
        return len(first["confidence"])
    masks = first.get("masks_left")
    return (masks if _integer(masks) else 0) + len(first.get("committed") or [])


def _check_td_steps(steps: list, where: str, length: int) -> None:
    _need(0 < length <= MAX_LENGTH, where, f"the steps of a canvas of 1 to {MAX_LENGTH} positions")
    for i, s in enumerate(steps):
        _tokens(s.get("committed"), f"{where}[{i}].committed", length)
        _tokens(s.get("revised", []), f"{where}[{i}].revised", length, revised=True)
        _need(_integer(s.get("masks_left", 0)), f"{where}[{i}].masks_left", "an integer", s.get("masks_left"))
        block = s.get("block")
        _need(block is None or isinstance(block, list) and len(block) == 2 and all(_integer(b) for b in block),
              f"{where}[{i}].block", "[start, end] (two integers) or null", block)
        conf = s.get("confidence")
        _need(conf is None or isinstance(conf, list) and all(_number(v) for v in conf), f"{where}[{i}].confidence",
              "a list of numbers (or null)", conf)


def check_compare(records, prompt) -> None:
    """Refuse what compare_html cannot replay, naming the place: records of a /compare run and its prompt."""
    if records is None:
        raise ExportError("records", "Run the comparison first: there is no run to download yet.")
    _need(isinstance(records, dict), "records", 'an object {"diffusion": [...], "text_diffusion": [...], "llm": [...]}',
          records)
    for i, r in enumerate(_items(records, "diffusion", "records")):
        preview = r.get("preview")
        _need(preview is None or isinstance(preview, str) and PNG_URI.fullmatch(preview) is not None,
              f"records.diffusion[{i}].preview", "a PNG data URI (data:image/png;base64,...)", preview)
    td = _items(records, "text_diffusion", "records", optional=True)
    if td:
        _check_td_steps(td, "records.text_diffusion", _canvas_length(td))
    for i, r in enumerate(_items(records, "llm", "records")):
        _need(isinstance(r.get("token"), str), f"records.llm[{i}].token", "text", r.get("token"))
        _need(_number(r.get("probability")), f"records.llm[{i}].probability", "a number", r.get("probability"))
        candidates = r.get("candidates", [])
        _need(isinstance(candidates, list), f"records.llm[{i}].candidates", "a list", candidates)
        for j, c in enumerate(candidates):
            _need(isinstance(c, dict) and isinstance(c.get("token"), str) and _number(c.get("probability")),
                  f"records.llm[{i}].candidates[{j}]", 'an object {"token": text, "probability": number}', c)
    _need(any(records.get(k) for k in ("diffusion", "text_diffusion", "llm")), "records", "a run with at least one step")
    _text("prompt", prompt, 1000)


def check_text_diffusion(records, prompt, text) -> None:
    """Refuse what text_diffusion_html cannot replay: records of a /text_diffusion run, its prompt and its text."""
    if records is None:
        raise ExportError("records", "Generate first: there is no run to download yet.")
    _need(isinstance(records, dict), "records", 'an object {"steps": [...], "run": {...}}', records)
    steps = _items(records, "steps", "records")
    _need(bool(steps), "records.steps", "a run with at least one step")
    run = records.get("run", {})
    _need(isinstance(run, dict), "records.run", "an object (the run's numbers)", run)
    _need(run.get("gen_length") is None or _integer(run["gen_length"]), "records.run.gen_length", "an integer",
          run.get("gen_length"))
    gaps = run.get("gaps")
    _need(gaps is None or isinstance(gaps, list) and all(_integer(g) for g in gaps), "records.run.gaps",
          "a list of positions", gaps)
    _check_td_steps(steps, "records.steps", _canvas_length(steps, run))
    _text("prompt", prompt, 1000)
    _text("text", text)


# -- the page ------------------------------------------------------------------------------------------------------
CSS = """
:root { --fg: #1f2937; --muted: #6b7280; --bg: #ffffff; --panel: #f3f4f6; --line: #d1d5db; --new: #f59e0b;
        --rev: #ef4444; --bar: #3b82f6; color-scheme: light dark; }
@media (prefers-color-scheme: dark) { :root { --fg: #e5e7eb; --muted: #9ca3af; --bg: #111827; --panel: #1f2937;
        --line: #374151; } }
body { font: 15px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); margin: 0 auto; padding: 16px;
       max-width: 1200px; }
h1 { font-size: 1.4em; margin: 0 0 4px; } h2 { font-size: 1.05em; margin: 0 0 8px; }
.muted, .counter, .legend { color: var(--muted); font-size: 0.9em; }
.prompt { font-size: 1.05em; } .prompt b { font-weight: 600; }
.controls { position: sticky; top: 0; background: var(--bg); padding: 8px 0; display: flex; gap: 8px;
            align-items: center; flex-wrap: wrap; border-bottom: 1px solid var(--line); z-index: 1; }
.controls input[type=range] { flex: 1; min-width: 160px; }
.controls output { font-variant-numeric: tabular-nums; min-width: 9em; font-weight: 600; }
button { font: inherit; padding: 2px 10px; border: 1px solid var(--line); border-radius: 6px; background: var(--panel);
         color: var(--fg); cursor: pointer; }
.lanes { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 12px; margin-top: 12px; }
.lane { background: var(--panel); border-radius: 8px; padding: 12px; min-width: 0; }
.lane img { width: 100%; max-width: 320px; aspect-ratio: 1; image-rendering: pixelated; display: block;
            background: var(--line); border-radius: 4px; }
.canvas { display: flex; flex-wrap: wrap; gap: 3px; }
.tok { display: inline-flex; flex-direction: column; align-items: center; border: 1px solid var(--line);
       border-radius: 4px; padding: 0 4px; min-width: 1.2em; background: var(--bg); white-space: pre; }
.tok.mask { color: var(--muted); } .tok.end { color: var(--muted); } .tok.outside { opacity: 0.45; }
.tok.new { background: var(--new); color: #111; border-color: var(--new); }
.tok.revised { background: var(--rev); color: #fff; border-color: var(--rev); }
.tok s { font-size: 0.75em; opacity: 0.85; }
.tok .conf { align-self: stretch; height: 3px; background: var(--bar); margin: 1px 0 2px; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; border-radius: 2px; vertical-align: middle; }
.llmtext { white-space: pre-wrap; background: var(--bg); border: 1px solid var(--line); border-radius: 4px;
           padding: 6px 8px; min-height: 4.5em; }
.llmtext mark { background: var(--new); color: #111; border-radius: 2px; }
table { border-collapse: collapse; width: 100%; } td, th { padding: 2px 6px; text-align: left; vertical-align: top; }
.cands td:last-child { width: 45%; } .cands .bar { background: var(--bar); height: 0.8em; border-radius: 2px; }
.cands tr.chosen td:first-child { font-weight: 700; }
.perstep { display: flex; align-items: flex-end; gap: 2px; height: 60px; margin: 8px 0; }
.perstep div { flex: 1; background: var(--bar); min-height: 2px; cursor: pointer; opacity: 0.55; }
.perstep div.now { opacity: 1; background: var(--new); }
details { margin-top: 16px; } .transcript td, .transcript th { border-bottom: 1px solid var(--line); font-size: 0.9em; }
#caption { margin: 8px 0 0; }
"""

# Shared by both pages: the slider, Play, the canvas of a text-diffusion run at step k, tokens as a person reads them.
# Every piece of text goes in through textContent: a token can never become markup.
COMMON_JS = r"""
const $ = (id) => document.getElementById(id);
const R = JSON.parse($('records').textContent), V = JSON.parse($('view').textContent);
const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls;
  if (text != null) e.textContent = text; return e; };
const isEnd = (t) => t in V.special || /^\[[A-Z]+\]$/.test(t) || /^<[^<>\s]*>$/.test(t);
const readable = (t) => t in V.special ? '[' + V.special[t] + ']'
  : "'" + t.replace(/\n/g, '\u21b5').replace(/\t/g, '\u21e5') + "'";
const pct = (p) => p == null ? '' : (100 * p).toFixed(1) + '%';
function canvasAt(steps, k, length, initial) {
  const tokens = initial ? initial.slice() : Array(length).fill(V.mask);
  for (let i = 0; i < Math.min(k, steps.length); i++) {
    for (const c of steps[i].committed) tokens[c.position] = c.token;
    for (const r of steps[i].revised || []) tokens[r.position] = r.token;
  }
  return tokens;
}
function drawCanvas(box, steps, k, length, initial) {
  const s = steps[Math.min(k, steps.length) - 1], now = k <= steps.length;
  const fresh = new Set(now ? s.committed.map((c) => c.position) : []);
  const revised = new Map(now ? (s.revised || []).map((r) => [r.position, r.previous]) : []);
  const block = s.block, conf = s.confidence;
  box.replaceChildren();
  canvasAt(steps, k, length, initial).forEach((t, p) => {
    const masked = t === V.mask, end = !masked && isEnd(t);
    const chip = el('span', 'tok' + (masked ? ' mask' : end ? ' end' : '') + (revised.has(p) ? ' revised'
      : fresh.has(p) ? ' new' : '') + (block && (p < block[0] || p >= block[1]) ? ' outside' : ''));
    chip.title = 'position ' + (p + 1) + (end ? ' (end of text: ' + t + ')' : '')
      + (conf && conf[p] != null ? ' \u00b7 confidence ' + pct(conf[p]) : '');
    if (revised.has(p)) { chip.append(el('s', null, revised.get(p))); chip.title += ' \u00b7 was ' + revised.get(p); }
    chip.append(el('span', null, masked ? V.mask : end ? V.end : t));
    if (conf && conf[p] != null) { const bar = el('span', 'conf'); bar.style.width = pct(conf[p]); chip.append(bar); }
    box.append(chip);
  });
  return {fresh: fresh.size, revised: revised.size};
}
function controls(n, draw) {
  const slider = $('step');
  const show = () => { const k = Number(slider.value); $('stepnum').textContent = 'Step ' + k + ' / ' + n; draw(k); };
  const go = (k) => { slider.value = Math.max(1, Math.min(n, k)); show(); };
  slider.addEventListener('input', show);
  $('prev').onclick = () => go(Number(slider.value) - 1);
  $('next').onclick = () => go(Number(slider.value) + 1);
  let timer = null;
  $('play').onclick = () => {
    if (timer) { clearInterval(timer); timer = null; $('play').textContent = 'Play'; return; }
    if (Number(slider.value) >= n) go(1);
    $('play').textContent = 'Pause';
    timer = setInterval(() => { if (Number(slider.value) >= n) $('play').click(); else go(Number(slider.value) + 1); },
                        Math.max(120, 4000 / n));
  };
  show();
  return go;
}
"""

COMPARE_JS = r"""
const D = R.diffusion || [], T = R.text_diffusion || [], L = R.llm || [];
const N = Math.max(D.length, T.length, L.length, 1);
const lane = (steps, k) => Math.min(k, steps.length);
const secs = (r) => r && r.elapsed != null ? ' \u00b7 ' + r.elapsed.toFixed(2) + ' s' : '';
const passes = (steps, k) => steps.slice(0, k).reduce((a, r) => a + (r.forward_passes || 1), 0);
const counter = (name, steps, k) => name + ': step ' + lane(steps, k) + ' / ' + steps.length + secs(steps[lane(steps, k) - 1])
  + ' \u00b7 forward passes ' + passes(steps, lane(steps, k)) + (k > steps.length ? ' (finished)' : '');
function draw(k) {
  const parts = [];
  if (D.length) {
    let j = lane(D, k) - 1;
    while (j > 0 && !D[j].preview) j--;
    if (D[j].preview) $('image').src = D[j].preview;
    $('image').alt = 'image diffusion, preview of step ' + (j + 1);
    $('counter-diffusion').textContent = counter('image diffusion', D, k)
      + (j + 1 < lane(D, k) ? ' \u00b7 showing the preview of step ' + (j + 1) : '');
    parts.push('image diffusion step ' + lane(D, k) + ': the whole image, one refinement further');
  }
  if (T.length) {
    drawCanvas($('canvas'), T, k, V.td_length, null);
    $('counter-td').textContent = counter('text diffusion', T, k) + ' \u00b7 masks left ' + T[lane(T, k) - 1].masks_left;
    const s = T[lane(T, k) - 1];
    parts.push('text diffusion step ' + lane(T, k) + ': committed positions '
      + (s.committed.map((c) => c.position + 1).join(', ') || 'none')
      + ((s.revised || []).length ? ', revised ' + s.revised.map((r) => r.position + 1).join(', ') : ''));
  }
  if (L.length) {
    const box = $('llm-text'), m = lane(L, k);
    box.replaceChildren();
    L.slice(0, m).forEach((r, i) => {
      if (r.token in V.special) return;
      box.append(i === m - 1 && k <= L.length ? el('mark', null, r.token) : document.createTextNode(r.token));
    });
    const r = L[m - 1], rows = $('cands');
    rows.replaceChildren();
    for (const c of r.candidates || []) {
      const tr = el('tr', c.token === r.token ? 'chosen' : '');
      tr.append(el('td', null, (c.token === r.token ? '\u2713 ' : '') + readable(c.token)), el('td', null, pct(c.probability)));
      const cell = el('td'), bar = el('div', 'bar'); bar.style.width = pct(c.probability || 0); cell.append(bar);
      tr.append(cell); rows.append(tr);
    }
    $('counter-llm').textContent = counter('LLM', L, k);
    parts.push('LLM step ' + m + ': chose ' + readable(r.token) + (r.probability != null ? ' (p = '
      + r.probability.toFixed(2) + ')' : '') + (k > L.length ? ' (finished earlier)' : ''));
  }
  $('caption').textContent = 'Step ' + k + ' \u00b7 ' + parts.join(' \u00b7 ');
}
controls(N, draw);
"""

TEXT_DIFFUSION_JS = r"""
const S = R.steps, N = S.length;
const bars = $('perstep'), most = Math.max(1, ...S.map((s) => s.committed.length + (s.revised || []).length));
S.forEach((s, i) => { const b = el('div'); b.style.height = (100 * (s.committed.length + (s.revised || []).length) / most) + '%';
  b.title = 'step ' + (i + 1) + ': ' + s.committed.length + ' committed' + ((s.revised || []).length ? ', '
    + s.revised.length + ' revised' : ''); bars.append(b); });
let go = null;
bars.childNodes.forEach((b, i) => { b.onclick = () => go(i + 1); });
function draw(k) {
  const s = S[k - 1], n = drawCanvas($('canvas'), S, k, V.td_length, V.initial);
  bars.childNodes.forEach((b, i) => b.classList.toggle('now', i === k - 1));
  const words = (items) => items.map((c) => "'" + c.token + "' at " + (c.position + 1)).join(', ');
  $('caption').textContent = 'Step ' + k + ' / ' + N + ' \u00b7 committed ' + n.fresh
    + (n.fresh ? ': ' + words(s.committed) : '') + (n.revised ? ' \u00b7 revised ' + n.revised + ': '
    + s.revised.map((r) => "'" + r.previous + "' \u2192 '" + r.token + "' at " + (r.position + 1)).join(', ') : '')
    + ' \u00b7 masks left ' + s.masks_left + (s.block ? ' \u00b7 refining positions ' + (s.block[0] + 1) + '-'
    + s.block[1] : '') + ' \u00b7 forward passes ' + k
    + (s.seconds != null ? ' \u00b7 this step ' + s.seconds.toFixed(3) + ' s' : '');
}
go = controls(N, draw);
"""


def _script_json(value) -> str:
    """JSON safe inside <script>: no '<', '>' or '&' (so no '</script>'), ASCII only."""
    return json.dumps(value, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _page(title: str, head: str, body: str, records: dict, view: dict, script: str, filename: str) -> str:
    esc = html.escape
    raw = json.dumps(records, ensure_ascii=False, indent=1).encode("utf-8")
    link = f"data:application/json;base64,{base64.b64encode(raw).decode('ascii')}"
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title><style>{CSS}</style></head>
<body>
<header><h1>{esc(title)}</h1>{head}
<p class="muted">Exported from “Diffusion vs LLM, live” on {made}. This file replays the run on its own, with no network:
move the slider (or press Play) to see every lane as the app showed it at that step.
<a download="{esc(filename)}" href="{link}" id="download-json">Download the records (JSON)</a></p></header>
<div class="controls"><button id="prev" type="button" aria-label="previous step">◀</button>
<input type="range" id="step" min="1" max="{view['steps']}" value="{view['steps']}" step="1" aria-label="step">
<button id="next" type="button" aria-label="next step">▶</button><button id="play" type="button">Play</button>
<output id="stepnum">Step {view['steps']} / {view['steps']}</output></div>
<p id="caption"></p>
{body}
<script type="application/json" id="records">{_script_json(records)}</script>
<script type="application/json" id="view">{_script_json(view)}</script>
<script>{COMMON_JS}{script}</script>
</body></html>
"""


def _td_words(step: dict) -> str:
    new = ", ".join(f"{c['token']} ({c['position'] + 1})" for c in step.get("committed", []))
    rev = "; ".join(f"{r.get('previous', '')} → {r['token']} ({r['position'] + 1})" for r in step.get("revised", []))
    return html.escape(new + (f"; revised {rev}" if rev else ""))


def _transcript(header: list[str], rows: list[list[str]]) -> str:
    """Every step as text (the page without its script still reads), cells already escaped."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (f"<details><summary>Every step as text</summary><table class='transcript'><tr>{head}</tr>{body}</table>"
            "</details>")


def _legend(revisions: bool) -> str:
    rev = "; <span class='swatch' style='background:var(--rev)'></span> revised (the old token struck out)" \
        if revisions else ""
    return (f"<p class='legend'><b>{MASK_GLYPH}</b> still masked; <b>{END_GLYPH}</b> end of text; "
            f"<span class='swatch' style='background:var(--new)'></span> committed at this step{rev}</p>")


def compare_html(records: dict, prompt: str) -> str:
    """One /compare run as a page: the image lane's preview at step k, the text-diffusion canvas at step k with its
    commits, the LLM's text so far with the token chosen and its top-5 candidates; the records inside."""
    check_compare(records, prompt)
    d, t, llm = records.get("diffusion", []), records.get("text_diffusion") or [], records.get("llm", [])
    n = max(len(d), len(t), len(llm), 1)
    esc = html.escape
    llm_text = "".join(r["token"] for r in llm if r["token"] not in SPECIAL_TOKENS).strip()
    head = f"<p class='prompt'><b>Prompt:</b> {esc(prompt)}</p>" + (
        f"<p class='muted'>The LLM described it as: “{esc(llm_text)}”</p>" if llm_text else "")
    lanes = []
    if d:
        lanes.append("<section class='lane'><h2>Image diffusion: the whole picture, refined every step</h2>"
                     "<img id='image' alt='image diffusion preview'><p class='counter' id='counter-diffusion'></p>"
                     "</section>")
    if t:
        revisions = any(s.get("revised") for s in t)
        lanes.append("<section class='lane'><h2>Text diffusion: the whole text, several words per step, any order</h2>"
                     f"<div class='canvas' id='canvas'></div>{_legend(revisions)}"
                     "<p class='counter' id='counter-td'></p></section>")
    if llm:
        lanes.append("<section class='lane'><h2>LLM: one token per step, left to right</h2>"
                     "<div class='llmtext' id='llm-text'></div><h2 style='margin-top:8px'>Next-token candidates "
                     "(✓ the one chosen)</h2><table class='cands'><tbody id='cands'></tbody></table>"
                     "<p class='counter' id='counter-llm'></p></section>")
    rows = []
    for k in range(1, n + 1):
        dr = d[k - 1] if k <= len(d) else None
        lr = llm[k - 1] if k <= len(llm) else None
        rows.append([str(k),
                     "" if dr is None else esc(f"timestep {dr.get('timestep')}, {dr.get('elapsed', '')} s"),
                     _td_words(t[k - 1]) if k <= len(t) else "",
                     "" if lr is None else esc(readable(lr["token"])) + (
                         f" (p = {lr['probability']:.2f})" if lr.get("probability") is not None else "")])
    body = (f"<div class='lanes'>{''.join(lanes)}</div>"
            + _transcript(["step", "image diffusion", "text diffusion: committed (position)", "LLM: token chosen"], rows))
    view = {"steps": n, "td_length": _canvas_length(t) if t else 0, "mask": MASK_GLYPH, "end": END_GLYPH,
            "special": SPECIAL_TOKENS}
    return _page("Diffusion vs LLM: one prompt, three kinds of model, step by step", head, body, records, view,
                 COMPARE_JS, "compare-records.json")


def _initial_canvas(steps: list, run: dict, length: int, text: str) -> list[str] | None:
    """An infilling run's canvas before step 1: its gaps masked, the template's words elsewhere. The records name only
    what the steps wrote, so the given words are read back from the final text where its words line up one per
    position (a word-level model: every gap's last token is the text's word there), the rest end of text; '…' where
    they do not line up."""
    gaps = run.get("gaps")
    if not gaps:
        return None
    last = {}
    for s in steps:
        last.update({c["position"]: c["token"] for c in s["committed"] + s.get("revised", [])})
    words = WORD.findall(text)
    aligned = all(g < len(words) and words[g] == last.get(g) for g in gaps)
    return [MASK_GLYPH if p in gaps else (words[p] if p < len(words) else "[EOS]") if aligned else "…"
            for p in range(length)]


def text_diffusion_html(records: dict, prompt: str, text: str) -> str:
    """One /text_diffusion (or /text_diffusion_infill) run as a page: the canvas at step k with that step's commits
    highlighted and its revisions marked, each position's confidence, tokens committed per step; the records inside."""
    check_text_diffusion(records, prompt, text)
    steps, run = records["steps"], records.get("run") or {}
    length = _canvas_length(steps, run)
    esc = html.escape
    knobs = [("length", run.get("gen_length")), ("block length", run.get("block_length")),
             ("threshold", run.get("threshold")), ("editing threshold", run.get("editing_threshold")),
             ("temperature", run.get("temperature")), ("steps", run.get("steps", len(steps))),
             ("tokens per pass", run.get("tokens_per_pass")), ("tokens/s", run.get("tokens_per_second")),
             ("settled at step", run.get("settled_at")), ("revisions", run.get("revisions"))]
    numbers = " · ".join(f"{name} <b>{esc(str(v))}</b>" for name, v in knobs if v is not None)
    head = (f"<p class='prompt'><b>Prompt:</b> {esc(prompt)}</p><p class='prompt'><b>Text:</b> {esc(text)}</p>"
            f"<p class='muted'>{numbers}</p>")
    revisions = any(s.get("revised") for s in steps)
    rows = [[str(i + 1), _td_words(s), esc(str(s.get("masks_left", "")))] for i, s in enumerate(steps)]
    body = ("<section class='lane'><h2>The canvas: every position predicted at every step, the surest committed</h2>"
            f"<div class='canvas' id='canvas'></div>{_legend(revisions)}<p class='legend'>The blue line under a "
            "position: how sure the model was of it at this step. Faded: outside the block being refined.</p>"
            "<h2>Tokens committed per step (click a bar)</h2><div class='perstep' id='perstep'></div></section>"
            + _transcript(["step", "committed (position)", "masks left"], rows))
    view = {"steps": len(steps), "td_length": length, "initial": _initial_canvas(steps, run, length, text), "mask": MASK_GLYPH,
            "end": END_GLYPH, "special": SPECIAL_TOKENS}
    title = "Text by diffusion: " + ("the gaps filled, step by step" if run.get("gaps") else "the canvas, step by step")
    return _page(title, head, body, records, view, TEXT_DIFFUSION_JS, "text-diffusion-records.json")


def write_export(kind: str, page: str) -> str:
    """A fresh file for an export in EXPORT_DIR (its files older than EXPORT_TTL_S deleted first), as pipelines'
    output_path does for media."""
    os.makedirs(EXPORT_DIR, exist_ok=True)
    now = time.time()
    for entry in os.scandir(EXPORT_DIR):
        try:
            if entry.is_file() and now - entry.stat().st_mtime > EXPORT_TTL_S:
                os.remove(entry.path)
        except OSError:  # another request removed it first
            pass
    fd, path = tempfile.mkstemp(prefix=f"{kind}-run-", suffix=".html", dir=EXPORT_DIR)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(page)
    return path
