/**
 * Small SVG building blocks for the HTML report: escaping, fixed-precision coordinates (so the same
 * data gives the same bytes on every machine) and axes drawn from d3-scale ticks. No DOM, no JS in the
 * output: every plot is a string of inline SVG.
 */

export function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A coordinate with 0.1 px resolution. */
export function px(v: number): string {
  return Number.isFinite(v) ? (Math.round(v * 10) / 10).toString() : '0';
}

/** d3-shape path strings carry full float precision; round every number in them. */
export function roundPath(d: string | null): string {
  return (d ?? '').replace(/-?\d+(\.\d+)?(e-?\d+)?/g, (n) => px(Number(n)));
}

export interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

export function inner(f: Frame): { x0: number; x1: number; y0: number; y1: number } {
  return { x0: f.left, x1: f.width - f.right, y0: f.height - f.bottom, y1: f.top };
}

interface TickScale {
  (v: number): number;
  ticks(count?: number): number[];
  tickFormat(count?: number, specifier?: string): (v: number) => string;
}

/** Bottom axis with grid lines up to the top of the frame. */
export function xAxis(f: Frame, scale: TickScale, label: string, count = 6, specifier?: string): string {
  const { x0, x1, y0, y1 } = inner(f);
  const fmt = scale.tickFormat(count, specifier);
  const ticks = scale.ticks(count).map((t) => {
    const x = px(scale(t));
    const text = fmt(t);
    return `<line class="grid" x1="${x}" x2="${x}" y1="${px(y0)}" y2="${px(y1)}"/>` + (text ? `<text x="${x}" y="${px(y0 + 14)}" text-anchor="middle">${esc(text)}</text>` : '');
  });
  return `<g class="axis x-axis"><line class="axis-line" x1="${px(x0)}" x2="${px(x1)}" y1="${px(y0)}" y2="${px(y0)}"/>${ticks.join('')}<text class="axis-label" x="${px((x0 + x1) / 2)}" y="${px(f.height - 4)}" text-anchor="middle">${esc(label)}</text></g>`;
}

/** Left axis with grid lines across the frame. */
export function yAxis(f: Frame, scale: TickScale, label: string, count = 5): string {
  const { x0, x1, y0, y1 } = inner(f);
  const fmt = scale.tickFormat(count);
  const ticks = scale.ticks(count).map((t) => {
    const y = px(scale(t));
    return `<line class="grid" x1="${px(x0)}" x2="${px(x1)}" y1="${y}" y2="${y}"/><text x="${px(x0 - 6)}" y="${y}" dy="0.32em" text-anchor="end">${esc(fmt(t))}</text>`;
  });
  const cy = (y0 + y1) / 2;
  return `<g class="axis y-axis"><line class="axis-line" x1="${px(x0)}" x2="${px(x0)}" y1="${px(y0)}" y2="${px(y1)}"/>${ticks.join('')}<text class="axis-label" transform="translate(12 ${px(cy)}) rotate(-90)" text-anchor="middle">${esc(label)}</text></g>`;
}

/** An accessible inline SVG: role img, labelled by its title, described by its desc. */
export function svg(id: string, f: Frame, title: string, desc: string, body: string): string {
  return (
    `<svg id="${esc(id)}" class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${f.width} ${f.height}" width="${f.width}" height="${f.height}" role="img" aria-labelledby="${esc(id)}-title ${esc(id)}-desc">` +
    `<title id="${esc(id)}-title">${esc(title)}</title><desc id="${esc(id)}-desc">${esc(desc)}</desc>${body}</svg>`
  );
}

/** A legend row of swatches at the top of a plot. */
export function legend(f: Frame, items: Array<{ label: string; cls: string; kind: 'line' | 'dot' | 'box' }>): string {
  let x = f.left;
  const parts = items.map((it) => {
    const sw =
      it.kind === 'line'
        ? `<line class="${it.cls}" x1="${px(x)}" x2="${px(x + 18)}" y1="10" y2="10"/>`
        : it.kind === 'dot'
          ? `<circle class="${it.cls}" cx="${px(x + 9)}" cy="10" r="4"/>`
          : `<rect class="${it.cls}" x="${px(x)}" y="4" width="18" height="12"/>`;
    const out = `${sw}<text x="${px(x + 22)}" y="10" dy="0.32em">${esc(it.label)}</text>`;
    x += 30 + it.label.length * 6.2;
    return out;
  });
  return `<g class="legend">${parts.join('')}</g>`;
}
