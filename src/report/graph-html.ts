// The HTML form of the provenance graph: one self-contained page (inline CSS, SVG and a
// little JS, nothing fetched) that draws the run left to right, data flowing from the
// files an execution read to the files it wrote, each execution colored by outcome.
//
// The layout is computed here, not in the browser, so it is the same everywhere and
// testable: layers by longest path (cycles, e.g. a file appended to, are broken where a
// depth-first search meets them), then a few barycenter sweeps to reduce crossings.

import { commandLabel, formatDuration } from './runs';
import { OUTCOME_COLORS, timing, type GraphEdge, type ProvenanceGraph } from './graph';

export interface PlacedNode {
  id: string;
  layer: number;
  x: number;
  y: number;
  width: number;
  height: number;
}

const NODE_WIDTH = 200;
const EXEC_HEIGHT = 40;
const FILE_HEIGHT = 26;
const COLUMN_GAP = 70;
const ROW_GAP = 14;
const MARGIN = 20;

/** Node positions (top-left corners) and the drawing's size. */
export function layoutGraph(g: ProvenanceGraph): { nodes: Map<string, PlacedNode>; width: number; height: number } {
  const ids = [...g.executions.map((e) => e.id), ...g.files.map((f) => f.id)];
  const out = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const e of g.edges) out.get(e.from)!.push(e.to);

  // Break cycles: drop edges that point back into the current depth-first path.
  const state = new Map<string, 'open' | 'done'>();
  const forward = new Map<string, string[]>(ids.map((id) => [id, []]));
  const visit = (id: string): void => {
    state.set(id, 'open');
    for (const to of out.get(id)!) {
      if (state.get(to) === 'open') continue;
      forward.get(id)!.push(to);
      if (!state.has(to)) visit(to);
    }
    state.set(id, 'done');
  };
  for (const id of ids) if (!state.has(id)) visit(id);

  // Longest path from the sources; sources that only feed others move next to them.
  const incoming = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const [from, tos] of forward) for (const to of tos) incoming.get(to)!.push(from);
  const layer = new Map<string, number>();
  const depth = (id: string): number => {
    const known = layer.get(id);
    if (known !== undefined) return known;
    layer.set(id, 0);
    const d = Math.max(0, ...incoming.get(id)!.map((p) => depth(p) + 1));
    layer.set(id, d);
    return d;
  };
  for (const id of ids) depth(id);
  for (const id of ids) {
    const succ = forward.get(id)!;
    if (incoming.get(id)!.length === 0 && succ.length > 0) layer.set(id, Math.max(0, Math.min(...succ.map((s) => layer.get(s)!)) - 1));
  }

  const layers: string[][] = [];
  for (const id of ids) (layers[layer.get(id)!] ??= []).push(id);
  for (let i = 0; i < layers.length; i++) layers[i] ??= [];
  const neighbours = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const e of g.edges) {
    neighbours.get(e.from)!.push(e.to);
    neighbours.get(e.to)!.push(e.from);
  }
  const position = new Map<string, number>();
  const number = (): void => layers.forEach((l) => l.forEach((id, i) => position.set(id, i)));
  number();
  for (let sweep = 0; sweep < 6; sweep++) {
    const order = sweep % 2 === 0 ? layers : [...layers].reverse();
    for (const l of order) {
      const bary = new Map<string, number>();
      for (const id of l) {
        const ns = neighbours.get(id)!.map((n) => position.get(n)!);
        bary.set(id, ns.length > 0 ? ns.reduce((a, b) => a + b, 0) / ns.length : position.get(id)!);
      }
      l.sort((a, b) => bary.get(a)! - bary.get(b)! || position.get(a)! - position.get(b)!);
      l.forEach((id, i) => position.set(id, i));
    }
  }

  const isFile = new Set(g.files.map((f) => f.id));
  const heightOf = (id: string): number => (isFile.has(id) ? FILE_HEIGHT : EXEC_HEIGHT);
  const columnHeight = (l: string[]): number => l.reduce((h, id) => h + heightOf(id), 0) + ROW_GAP * Math.max(0, l.length - 1);
  const tallest = Math.max(0, ...layers.map(columnHeight));
  const nodes = new Map<string, PlacedNode>();
  layers.forEach((l, li) => {
    let y = MARGIN + (tallest - columnHeight(l)) / 2;
    for (const id of l) {
      const h = heightOf(id);
      nodes.set(id, { id, layer: li, x: MARGIN + li * (NODE_WIDTH + COLUMN_GAP), y, width: NODE_WIDTH, height: h });
      y += h + ROW_GAP;
    }
  });
  return {
    nodes,
    width: MARGIN * 2 + Math.max(1, layers.length) * NODE_WIDTH + Math.max(0, layers.length - 1) * COLUMN_GAP,
    height: MARGIN * 2 + tallest,
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Fits a label into a node: long paths keep their end, commands their start. */
function fit(text: string, max: number, keepEnd: boolean): string {
  if (text.length <= max) return text;
  return keepEnd ? `...${text.slice(text.length - max + 3)}` : `${text.slice(0, max - 3)}...`;
}

function edgePath(a: PlacedNode, b: PlacedNode): string {
  const x1 = a.x + a.width;
  const y1 = a.y + a.height / 2;
  const x2 = b.x;
  const y2 = b.y + b.height / 2;
  const bend = Math.max(40, Math.abs(x2 - x1) / 2);
  return `M${x1.toFixed(1)},${y1.toFixed(1)} C${(x1 + bend).toFixed(1)},${y1.toFixed(1)} ${(x2 - bend).toFixed(1)},${y2.toFixed(1)} ${x2.toFixed(1)},${y2.toFixed(1)}`;
}

const EDGE_COLORS: Record<GraphEdge['kind'], string> = { read: '#8a8a8a', write: '#1f4e99', child: '#c8c8c8' };

const CSS = `
body { font: 14px/1.4 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { padding: 14px 20px; background: #fff; border-bottom: 1px solid #ddd; }
h1 { font-size: 18px; margin: 0 0 4px; }
.summary span { margin-right: 14px; }
.saved { font-weight: bold; color: #2e7d32; }
.legend { margin-top: 6px; font-size: 12px; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 3px; margin: 0 4px -2px 10px; border: 1px solid #0003; }
#details { padding: 6px 20px; font-size: 12px; background: #f0f0f0; border-bottom: 1px solid #ddd; min-height: 16px; white-space: pre-wrap; word-break: break-all; }
#canvas { padding: 8px; }
#canvas svg { display: block; max-width: 100%; height: auto; }
svg text { font-size: 11px; pointer-events: none; }
.node { cursor: pointer; }
.node rect { stroke: #0005; }
.file rect { fill: #fff; stroke: #9e9e9e; }
.edge { fill: none; stroke-width: 1.4; }
.edge.child { stroke-dasharray: 4 3; }
.dim { opacity: 0.15; }
`;

const SCRIPT = `
(function () {
  var graph = JSON.parse(document.getElementById('graph-data').textContent);
  var byId = {};
  graph.executions.forEach(function (e) { byId[e.id] = e; });
  graph.files.forEach(function (f) { byId[f.id] = f; });
  var details = document.getElementById('details');
  var nodes = document.querySelectorAll('.node');
  var edges = document.querySelectorAll('.edge');
  function focus(id) {
    var near = {}; near[id] = true;
    edges.forEach(function (el) {
      var on = el.getAttribute('data-from') === id || el.getAttribute('data-to') === id;
      if (on) { near[el.getAttribute('data-from')] = true; near[el.getAttribute('data-to')] = true; }
      el.classList.toggle('dim', id !== null && !on);
    });
    nodes.forEach(function (el) { el.classList.toggle('dim', id !== null && !near[el.id]); });
  }
  function describe(n) {
    if (n.path) return 'file ' + n.path;
    var lines = ['#' + n.execution + ' ' + n.outcome, n.argv.join(' ')];
    if (n.outcome === 'hit') lines.push('saved ' + (n.savedMs / 1000).toFixed(2) + ' s');
    else lines.push('ran ' + (n.durationMs / 1000).toFixed(2) + ' s, exit ' + n.exitCode);
    n.reasons.forEach(function (r) { lines.push('why: ' + r); });
    return lines.join('  |  ');
  }
  nodes.forEach(function (el) {
    el.addEventListener('mouseenter', function () { focus(el.id); });
    el.addEventListener('mouseleave', function () { focus(null); });
    el.addEventListener('click', function () { details.textContent = describe(byId[el.id]); });
  });
  details.textContent = 'Click a node for details; hover to follow its reads and writes.';
  document.body.setAttribute('data-ready', 'true');
})();
`;

export function formatHtml(g: ProvenanceGraph): string {
  const { nodes, width, height } = layoutGraph(g);
  const svg: string[] = [];
  svg.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`);
  svg.push('<defs>');
  for (const [kind, color] of Object.entries(EDGE_COLORS)) {
    svg.push(`<marker id="arrow-${kind}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="${color}"/></marker>`);
  }
  svg.push('</defs>');
  for (const e of g.edges) {
    const a = nodes.get(e.from)!;
    const b = nodes.get(e.to)!;
    svg.push(
      `<path class="edge ${e.kind}" data-from="${e.from}" data-to="${e.to}" d="${edgePath(a, b)}" stroke="${EDGE_COLORS[e.kind]}" marker-end="url(#arrow-${e.kind})"/>`,
    );
  }
  for (const e of g.executions) {
    const n = nodes.get(e.id)!;
    const title = [`#${e.execution} ${e.outcome}`, e.argv.join(' '), timing(e), ...e.reasons.map((r) => `why: ${r}`)].join('\n');
    svg.push(
      `<g class="node execution ${e.outcome}" id="${e.id}" data-outcome="${e.outcome}"><title>${escapeHtml(title)}</title>` +
        `<rect x="${n.x}" y="${n.y}" width="${n.width}" height="${n.height}" rx="7" fill="${OUTCOME_COLORS[e.outcome]}"/>` +
        `<text x="${n.x + 8}" y="${n.y + 16}">${escapeHtml(fit(`#${e.execution} ${e.label}`, 34, false))}</text>` +
        `<text x="${n.x + 8}" y="${n.y + 31}" fill="#333">${escapeHtml(timing(e))}</text></g>`,
    );
  }
  for (const f of g.files) {
    const n = nodes.get(f.id)!;
    svg.push(
      `<g class="node file" id="${f.id}"><title>${escapeHtml(f.path)}</title>` +
        `<rect x="${n.x}" y="${n.y}" width="${n.width}" height="${n.height}" rx="2"/>` +
        `<text x="${n.x + 8}" y="${n.y + 17}">${escapeHtml(fit(f.label, 34, true))}</text></g>`,
    );
  }
  svg.push('</svg>');
  const c = g.counts;
  const data = JSON.stringify(g).replace(/</g, '\\u003c');
  const title = `pcache run ${g.runId}: ${commandLabel(g.argv)}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>${escapeHtml(title)}</h1>
<div class="summary"><span>cwd ${escapeHtml(g.cwd)}</span><span>exit ${g.exitStatus ?? '-'}</span><span>${c.total} executions: ${c.ran} ran, ${c.skipped} skipped, ${c.uncacheable} uncacheable</span><span>wall ${formatDuration(g.wallSeconds * 1000)}</span><span class="saved">saved ${formatDuration(g.savedSeconds * 1000)}</span></div>
<div class="legend"><i style="background:${OUTCOME_COLORS.hit}"></i>skipped (hit) <i style="background:${OUTCOME_COLORS.miss}"></i>ran (miss) <i style="background:${OUTCOME_COLORS.uncacheable}"></i>uncacheable <i style="background:#fff"></i>file${g.hiddenFiles > 0 ? ` &nbsp; ${g.hiddenFiles} system files and probes not shown (pcache graph --all)` : ''}</div>
</header>
<div id="details"></div>
<div id="canvas">
${svg.join('\n')}
</div>
<script type="application/json" id="graph-data">${data}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
