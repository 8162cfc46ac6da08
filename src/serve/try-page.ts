// The server's root page: every model with its inputs and outputs, and for a model with declared processing a
// form to send an image, a WAV file or text and see the labels and scores (or the embedding). Plus the
// OpenAI-compatible /v1/embeddings route. The page only uses the public API (metadata and infer), and gets the list
// of ready models written into it: the repository index is off unless --model-control explicit.
import type { ExtraRoute, ModelRegistry } from '../core/index.ts';
import { embeddingsRoute } from '../core/processing/embeddings-route.ts';

export function processingRoutes(registry: ModelRegistry, readyModels: () => string[] = () => []): ExtraRoute[] {
  return [
    embeddingsRoute(registry),
    {
      method: 'GET',
      path: '/',
      handle: () => {
        // JSON inside a script element: '<' escaped, so a model name cannot close the element.
        const names = JSON.stringify([...new Set(readyModels())].sort()).replace(/</g, '\\u003c');
        const body = TRY_PAGE.replace('<body>', `<body><script id="dais-models" type="application/json">${names}</script>`);
        return { status: 200, headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }, body };
      },
    },
  ];
}

const TRY_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dais — models</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d2430}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin:0 0 .4rem}
.model{border:1px solid #d5dae1;border-radius:8px;padding:1rem;margin:1rem 0}
table{border-collapse:collapse;font-size:.9rem}td,th{padding:.15rem .6rem;text-align:left}
code{background:#f2f4f7;padding:0 .25rem;border-radius:3px}
.bar{background:#3b6fd8;height:.7rem;border-radius:2px}
.err{color:#b3261e}.muted{color:#667085}
form{margin-top:.6rem}
</style></head><body>
<h1>Models on this server</h1>
<p class="muted">Send a file or text to a model that declares preprocessing; the answer is what <code>POST /v2/models/{name}/infer</code> returns.</p>
<div id="models">Loading…</div>
<script type="module">
const $ = (tag, attrs = {}, ...kids) => { const e = document.createElement(tag); Object.assign(e, attrs); e.append(...kids); return e; };
const tensors = (list) => $('table', {}, $('tr', {}, $('th', {}, 'name'), $('th', {}, 'datatype'), $('th', {}, 'shape')),
  ...list.map((t) => $('tr', {}, $('td', {}, $('code', {}, t.name)), $('td', {}, t.datatype), $('td', {}, '[' + t.shape.join(', ') + ']'))));
function showClasses(out, strings) {
  const rows = strings.map((s) => { const [score, index, ...label] = s.split(':'); return { score: Number(score), index, label: label.join(':') || '#' + index }; });
  const max = Math.max(...rows.map((r) => Math.abs(r.score)), 1e-9);
  out.replaceChildren($('table', { className: 'result' }, ...rows.map((r) => $('tr', {},
    $('td', { className: 'label' }, r.label), $('td', { className: 'score' }, r.score.toFixed(4)),
    $('td', { style: 'width:12rem' }, $('div', { className: 'bar', style: 'width:' + (100 * Math.abs(r.score) / max).toFixed(1) + '%' })))))); 
}
async function run(model, p, out, payload) {
  out.replaceChildren('Running…');
  try {
    const res = await fetch('/v2/models/' + encodeURIComponent(model) + '/infer', payload);
    const body = await res.json();
    if (!res.ok) { out.replaceChildren($('span', { className: 'err' }, body.error + ' (' + body.code + ')')); return; }
    const cls = p.classification && body.outputs.find((o) => o.name === p.classification.output && o.datatype === 'BYTES');
    if (cls) return showClasses(out, cls.data);
    const o = body.outputs[0];
    out.replaceChildren($('div', { className: 'embedding' }, o.name + ' [' + o.shape.join(', ') + ']: ' + o.data.slice(0, 8).map((x) => Number(x).toFixed(4)).join(', ') + (o.data.length > 8 ? ', …' : '')));
  } catch (e) { out.replaceChildren($('span', { className: 'err' }, String(e))); }
}
function form(meta) {
  const p = meta.parameters && meta.parameters.processing;
  if (!p || !p.input) return $('p', { className: 'muted' }, 'No declared preprocessing: send tensors through the v2 API.');
  const out = $('div', { className: 'output' });
  const f = $('form');
  if (p.input.kind === 'text') {
    const text = $('textarea', { name: 'text', rows: 2, cols: 60, placeholder: 'Type a sentence' });
    f.append(text, ' ', $('button', { type: 'submit' }, 'Run'));
    f.onsubmit = (ev) => { ev.preventDefault();
      const req = { inputs: [{ name: p.input.name, datatype: 'BYTES', shape: [1], data: [text.value] }] };
      if (p.classification) req.outputs = [{ name: p.classification.output, parameters: { classification: p.classification.top_k } }];
      run(meta.name, p, out, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(req) }); };
  } else {
    const file = $('input', { type: 'file', name: 'file', accept: p.input.kind === 'image' ? 'image/jpeg,image/png,image/webp' : 'audio/wav,.wav' });
    f.append(file, ' ', $('button', { type: 'submit' }, 'Run'));
    f.onsubmit = (ev) => { ev.preventDefault(); const fl = file.files[0]; if (!fl) return;
      const type = fl.type || (p.input.kind === 'image' ? 'image/jpeg' : 'audio/wav');
      run(meta.name, p, out, { method: 'POST', headers: { 'content-type': type }, body: fl }); };
  }
  return $('div', {}, $('p', {}, 'Send ' + (p.input.kind === 'text' ? 'text' : 'a' + (p.input.kind === 'image' ? 'n image' : ' WAV file')) + ' as ', $('code', {}, p.input.name), ':'), f, out);
}
async function main() {
  const names = JSON.parse(document.getElementById('dais-models').textContent);
  const list = document.getElementById('models');
  list.replaceChildren();
  if (!names.length) list.append($('p', {}, 'No model is ready.'));
  for (const name of names) {
    const meta = await (await fetch('/v2/models/' + encodeURIComponent(name))).json();
    list.append($('section', { className: 'model', id: 'model-' + name }, $('h2', {}, name + ' ', $('span', { className: 'muted' }, meta.platform + ' · versions ' + (meta.versions || []).join(', '))),
      $('div', {}, 'Inputs'), tensors(meta.inputs), $('div', {}, 'Outputs'), tensors(meta.outputs), form(meta)));
  }
  document.body.dataset.ready = 'true';
}
main().catch((e) => { document.getElementById('models').replaceChildren($('span', { className: 'err' }, String(e))); });
</script></body></html>`;
