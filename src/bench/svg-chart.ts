// Charts as inline SVG strings: the report is one self-contained HTML file that opens from disk with no script
// and no network. Every mark carries its data (data-series, data-x, data-y) so a test can read the chart back.

export interface LineSeries {
  name: string;
  points: [number, number][];
  dashed?: boolean;
}

export interface LineChartSpec {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: LineSeries[];
  xLog?: boolean;
  yLog?: boolean;
  /** Where to put x ticks (default: decades on a log axis, round steps otherwise). */
  xTicks?: number[];
  /** Vertical markers (e.g. break-even volumes). */
  markers?: { x: number; label: string }[];
}

export interface BarSpec {
  id: string;
  title: string;
  yLabel: string;
  bars: { label: string; value: number; group?: string }[];
  yLog?: boolean;
}

const W = 720;
const H = 360;
const M = { left: 70, right: 170, top: 36, bottom: 52 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return `${+v.toPrecision(3)}`;
  if (a === 0) return '0';
  return `${+v.toPrecision(2)}`;
}

interface Scale {
  map(v: number): number;
  ticks: number[];
}

function scale(min: number, max: number, from: number, to: number, log: boolean): Scale {
  if (log) {
    const lo = Math.floor(Math.log10(Math.max(min, 1e-12)));
    const hi = Math.ceil(Math.log10(Math.max(max, min * 10, 1e-12)));
    const ticks = Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i));
    return { map: (v) => from + ((Math.log10(Math.max(v, 1e-12)) - lo) / (hi - lo || 1)) * (to - from), ticks };
  }
  const lo = Math.min(0, min);
  const span = max - lo || 1;
  const step = 10 ** Math.floor(Math.log10(span / 5));
  const nice = [1, 2, 5, 10].map((k) => k * step).find((s) => span / s <= 6) ?? step * 10;
  const top = Math.ceil(max / nice) * nice || nice;
  const ticks: number[] = [];
  for (let v = lo; v <= top + nice / 2; v += nice) ticks.push(Number(v.toPrecision(10)));
  return { map: (v) => from + ((v - lo) / (top - lo || 1)) * (to - from), ticks };
}

function frame(id: string, title: string, xLabel: string, yLabel: string): string {
  return `<text x="${W / 2 - M.right / 2}" y="20" text-anchor="middle" class="title">${esc(title)}</text>` +
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 10}" text-anchor="middle" class="axis-label">${esc(xLabel)}</text>` +
    `<text transform="translate(16 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle" class="axis-label">${esc(yLabel)}</text>`;
}

export function lineChart(spec: LineChartSpec): string {
  const all = spec.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (all.length === 0) return emptyChart(spec.id, spec.title, 'no data');
  const xs = all.map((p) => p[0]).concat((spec.markers ?? []).map((m) => m.x));
  const ys = all.map((p) => p[1]);
  const sx = scale(Math.min(...xs), Math.max(...xs), M.left, W - M.right, Boolean(spec.xLog));
  const sy = scale(Math.min(...ys.filter((y) => !spec.yLog || y > 0)), Math.max(...ys), H - M.bottom, M.top, Boolean(spec.yLog));
  let g = frame(spec.id, spec.title, spec.xLabel, spec.yLabel);
  for (const t of sy.ticks) {
    const y = sy.map(t);
    g += `<line x1="${M.left}" x2="${W - M.right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" class="grid"/><text x="${M.left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" class="tick">${fmt(t)}</text>`;
  }
  for (const t of spec.xTicks ?? sx.ticks) {
    const x = sx.map(t);
    g += `<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${H - M.bottom}" y2="${H - M.bottom + 4}" class="axis"/><text x="${x.toFixed(1)}" y="${H - M.bottom + 18}" text-anchor="middle" class="tick">${fmt(t)}</text>`;
  }
  g += `<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" class="axis"/><line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" class="axis"/>`;
  for (const mk of spec.markers ?? []) {
    const x = sx.map(mk.x);
    g += `<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${M.top}" y2="${H - M.bottom}" class="marker" data-marker="${esc(mk.label)}" data-x="${mk.x}"/>`;
  }
  spec.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!spec.yLog || y > 0));
    const d = pts.map(([x, y], k) => `${k ? 'L' : 'M'}${sx.map(x).toFixed(1)},${sy.map(y).toFixed(1)}`).join('');
    g += `<g class="series" data-series="${esc(s.name)}"><path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`;
    for (const [x, y] of pts) g += `<circle cx="${sx.map(x).toFixed(1)}" cy="${sy.map(y).toFixed(1)}" r="3" fill="${color}" data-x="${x}" data-y="${y}"><title>${esc(s.name)}: ${fmt(x)} → ${fmt(y)}</title></circle>`;
    g += '</g>';
    const ly = M.top + 8 + i * 18;
    g += `<line x1="${W - M.right + 12}" x2="${W - M.right + 32}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/><text x="${W - M.right + 36}" y="${ly + 4}" class="legend">${esc(s.name)}</text>`;
  });
  return `<svg id="${esc(spec.id)}" class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(spec.title)}" xmlns="http://www.w3.org/2000/svg">${g}</svg>`;
}

export function barChart(spec: BarSpec): string {
  const bars = spec.bars.filter((b) => Number.isFinite(b.value) && (!spec.yLog || b.value > 0));
  if (bars.length === 0) return emptyChart(spec.id, spec.title, 'no data');
  const sy = scale(Math.min(...bars.map((b) => b.value)), Math.max(...bars.map((b) => b.value)), H - M.bottom, M.top, Boolean(spec.yLog));
  const groups = [...new Set(bars.map((b) => b.group ?? ''))];
  const slot = (W - M.right - M.left) / bars.length;
  let g = frame(spec.id, spec.title, '', spec.yLabel);
  for (const t of sy.ticks) {
    const y = sy.map(t);
    g += `<line x1="${M.left}" x2="${W - M.right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" class="grid"/><text x="${M.left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" class="tick">${fmt(t)}</text>`;
  }
  const base = spec.yLog ? H - M.bottom : sy.map(0);
  bars.forEach((b, i) => {
    const color = COLORS[groups.indexOf(b.group ?? '') % COLORS.length];
    const x = M.left + i * slot + slot * 0.15;
    const y = sy.map(b.value);
    g += `<rect x="${x.toFixed(1)}" y="${Math.min(y, base).toFixed(1)}" width="${(slot * 0.7).toFixed(1)}" height="${Math.abs(base - y).toFixed(1)}" fill="${color}" data-series="${esc(b.group ?? b.label)}" data-x="${esc(b.label)}" data-y="${b.value}"><title>${esc(b.label)}: ${fmt(b.value)}</title></rect>`;
    g += `<text x="${(x + slot * 0.35).toFixed(1)}" y="${(Math.min(y, base) - 4).toFixed(1)}" text-anchor="middle" class="tick">${fmt(b.value)}</text>`;
    g += `<text x="${(x + slot * 0.35).toFixed(1)}" y="${H - M.bottom + 14}" text-anchor="middle" class="tick">${esc(b.label.length > 16 ? `${b.label.slice(0, 15)}…` : b.label)}</text>`;
  });
  g += `<line x1="${M.left}" x2="${W - M.right}" y1="${base}" y2="${base}" class="axis"/>`;
  groups.filter(Boolean).forEach((grp, i) => {
    const ly = M.top + 8 + i * 18;
    g += `<rect x="${W - M.right + 12}" y="${ly - 6}" width="20" height="12" fill="${COLORS[groups.indexOf(grp) % COLORS.length]}"/><text x="${W - M.right + 36}" y="${ly + 4}" class="legend">${esc(grp)}</text>`;
  });
  return `<svg id="${esc(spec.id)}" class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(spec.title)}" xmlns="http://www.w3.org/2000/svg">${g}</svg>`;
}

export function emptyChart(id: string, title: string, why: string): string {
  return `<svg id="${esc(id)}" class="chart empty" viewBox="0 0 ${W} 80" width="${W}" height="80" xmlns="http://www.w3.org/2000/svg"><text x="10" y="24" class="title">${esc(title)}</text><text x="10" y="56" class="tick">${esc(why)}</text></svg>`;
}

export const CHART_CSS = `.chart{background:#fff;border:1px solid #ddd;margin:8px 0;max-width:100%;height:auto}.chart .title{font:600 14px sans-serif}.chart .axis-label{font:12px sans-serif;fill:#444}.chart .tick{font:11px sans-serif;fill:#555}.chart .legend{font:12px sans-serif}.chart .grid{stroke:#eee}.chart .axis{stroke:#888}.chart .marker{stroke:#555;stroke-dasharray:3 3}`;
