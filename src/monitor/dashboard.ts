// The monitoring dashboard: one HTML page drawing Chart.js charts (served from node_modules, no CDN) from the
// server's /v2/monitor/series JSON, refreshed every few seconds. Used by `dais serve --dashboard` and `dais monitor`.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

let chartJs: string | undefined;

/** Chart.js's UMD build, read once from the installed package. */
export function dashboardAsset(name: string): string {
  if (name !== 'chart.umd.min.js') throw new Error(`no dashboard asset '${name}'`);
  chartJs ??= readFileSync(join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
  return chartJs;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function dashboardHtml(options: { seriesUrl: string; title?: string; refreshMs?: number }): string {
  const title = escapeHtml(options.title ?? 'dais — live monitoring');
  const config = JSON.stringify({ seriesUrl: options.seriesUrl, refreshMs: options.refreshMs ?? 3000 });
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2430; }
  header { padding: 12px 20px; background: #1d2430; color: #fff; display: flex; gap: 16px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  header span { opacity: .75; font-size: 12px; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 16px; padding: 16px 20px; }
  section { background: #fff; border-radius: 8px; padding: 12px 16px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
  section h2 { font-size: 15px; margin: 0 0 8px; }
  .chart { position: relative; height: 240px; }
  table { border-collapse: collapse; width: 100%; font-size: 13px; }
  td, th { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eee; }
  .ok { color: #1a7f37; } .drift { color: #c62828; font-weight: 600; } .insufficient_data, .no_profile { color: #8a6d00; }
  select { font: inherit; }
</style>
</head>
<body>
<header><h1>${title}</h1><span id="updated">loading…</span>
  <label style="margin-left:auto">drift of <select id="version"></select></label></header>
<main>
  <section><h2>Throughput (requests/s)</h2><div class="chart"><canvas id="throughput"></canvas></div></section>
  <section><h2>Latency (ms): p50, p95, p99</h2><div class="chart"><canvas id="latency"></canvas></div></section>
  <section><h2>Drift: PSI per feature over time</h2><div class="chart"><canvas id="drift"></canvas></div></section>
  <section><h2>Live accuracy (feedback)</h2><div class="chart"><canvas id="accuracy"></canvas></div></section>
  <section style="grid-column: 1 / -1"><h2>Model versions</h2><table id="status"><thead><tr><th>model</th><th>version</th><th>drift status</th><th>drifting features</th><th>feedback</th><th>live accuracy / MAE</th><th>reference</th><th>shadow agreement</th></tr></thead><tbody></tbody></table></section>
</main>
<script src="/dashboard/chart.umd.min.js"></script>
<script>
(() => {
  const CONFIG = ${config};
  const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];
  const time = (t) => new Date(t).toLocaleTimeString();
  const charts = {};
  window.__dais = { charts, updates: 0, errors: 0 };
  function chart(id, yTitle, extra) {
    const ctx = document.getElementById(id);
    charts[id] = new Chart(ctx, {
      type: 'line',
      data: { labels: [], datasets: [] },
      options: Object.assign({ animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
        scales: { x: { type: 'linear', ticks: { callback: (v) => time(v), maxTicksLimit: 6 } }, y: { beginAtZero: true, title: { display: true, text: yTitle } } },
        plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } } }, extra || {}),
    });
    return charts[id];
  }
  chart('throughput', 'requests/s');
  chart('latency', 'ms');
  chart('drift', 'PSI');
  chart('accuracy', 'accuracy', { scales: { x: { type: 'linear', ticks: { callback: (v) => time(v), maxTicksLimit: 6 } }, y: { min: 0, max: 1, title: { display: true, text: 'accuracy' } } } });
  function set(c, datasets) {
    c.data.datasets = datasets.map((d, i) => Object.assign({ borderColor: COLORS[i % COLORS.length], backgroundColor: COLORS[i % COLORS.length], pointRadius: 2, borderWidth: 2, tension: 0.2 }, d));
    c.update('none');
  }
  const select = document.getElementById('version');
  function render(s) {
    const vs = s.versions;
    const key = (v) => v.model + ' v' + v.version;
    const keys = vs.map(key);
    if (select.options.length !== keys.length || [...select.options].some((o, i) => o.value !== keys[i])) {
      const was = select.value;
      select.innerHTML = '';
      for (const k of keys) select.add(new Option(k, k));
      const firstProfiled = vs.find((v) => v.drift.length) || vs[0];
      select.value = keys.includes(was) ? was : firstProfiled ? key(firstProfiled) : '';
    }
    set(charts.throughput, vs.map((v) => ({ label: key(v), data: v.throughput.map((p) => ({ x: p.t, y: p.rps })) })));
    set(charts.latency, vs.flatMap((v) => ['p50', 'p95', 'p99'].map((q) => ({ label: key(v) + ' ' + q, data: v.latency.filter((p) => p[q] === p[q]).map((p) => ({ x: p.t, y: p[q] })), borderDash: q === 'p50' ? [] : q === 'p95' ? [6, 3] : [2, 2] }))));
    const chosen = vs.find((v) => key(v) === select.value);
    const features = chosen && chosen.drift.length ? Object.keys(chosen.drift[chosen.drift.length - 1].psi) : [];
    set(charts.drift, features.map((f) => ({ label: f, data: chosen.drift.map((p) => ({ x: p.t, y: p.psi[f] })) })));
    set(charts.accuracy, vs.filter((v) => v.performance.history.length).map((v) => ({ label: key(v), data: v.performance.history.map((p) => ({ x: p.t, y: p.value })) })));
    const tbody = document.querySelector('#status tbody');
    tbody.innerHTML = '';
    for (const v of vs) {
      const p = v.performance;
      const live = p.accuracy !== undefined ? (p.accuracy * 100).toFixed(1) + '%' : p.mae !== undefined ? 'MAE ' + p.mae.toPrecision(3) : '—';
      const ref = p.reference ? (p.reference.accuracy !== undefined ? (p.reference.accuracy * 100).toFixed(1) + '%' : 'MAE ' + p.reference.mae.toPrecision(3)) : '—';
      const shadow = v.shadow && v.shadow.agreement !== undefined ? (v.shadow.agreement * 100).toFixed(1) + '% of ' + v.shadow.rows + ' rows vs v' + v.shadow.against : '—';
      const tr = document.createElement('tr');
      for (const [text, cls] of [[v.model], [v.version], [v.status.replace('_', ' '), v.status], [v.drifted.join(', ') || '—'], [String(p.feedback)], [live], [ref], [shadow]]) {
        const td = document.createElement('td');
        td.textContent = text;
        if (cls) td.className = cls;
        tr.appendChild(td);
      }
      tbody.appendChild(tr);
    }
    document.getElementById('updated').textContent = 'updated ' + time(Date.parse(s.generatedAt));
    window.__dais.updates++;
    document.body.dataset.rendered = String(window.__dais.updates);
  }
  async function tick() {
    try {
      const res = await fetch(CONFIG.seriesUrl, { cache: 'no-store' });
      if (!res.ok) throw new Error(res.status + ' ' + (await res.text()));
      render(await res.json());
    } catch (e) {
      window.__dais.errors++;
      document.getElementById('updated').textContent = 'cannot reach the server: ' + e.message;
    }
  }
  select.addEventListener('change', tick);
  tick();
  setInterval(tick, CONFIG.refreshMs);
})();
</script>
</body>
</html>
`;
}
