/**
 * Text helpers for the TUI: fixed-width columns, numbers an engineer reads at a glance,
 * UTC clock times (the stream's own time zone) and sparklines. Pure; no colours here.
 */

/** Cuts `s` to `width` characters, marking the cut with `…` (or `~` without Unicode). */
export function cut(s: string, width: number, unicode = true): string {
  if (width <= 0) return '';
  if (s.length <= width) return s;
  if (width === 1) return s.slice(0, 1);
  return s.slice(0, width - 1).trimEnd() + (unicode ? '…' : '~');
}

export function padEnd(s: string, width: number, unicode = true): string {
  return cut(s, width, unicode).padEnd(width);
}

export function padStart(s: string, width: number, unicode = true): string {
  return cut(s, width, unicode).padStart(width);
}

/** 7, 12.3k, 4.56M: counts in at most 6 characters. */
export function count(n: number): string {
  if (n < 100_000) return String(Math.round(n));
  if (n < 10_000_000) return `${(n / 1000).toFixed(n < 1_000_000 ? 1 : 0)}k`;
  if (n < 10_000_000_000) return `${(n / 1_000_000).toFixed(2)}M`;
  return `${(n / 1_000_000_000).toFixed(1)}G`;
}

/** Drops per second: `0`, `0.2`, `12.4`, `312`, `12.3k`. */
export function rate(r: number): string {
  if (r === 0) return '0';
  if (r < 100) return r.toFixed(1);
  return count(r);
}

/** `HH:MM:SS` in UTC, or `-` when unknown. */
export function clock(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '-';
  return new Date(ms).toISOString().slice(11, 19);
}

/** `45s`, then minutes only (`3m`, `2h05m`, `3d04h`): an idle screen need not redraw each second. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

/** `42%`; never `100%` before the limit is really reached. */
export function percent(fill: number): string {
  const p = Math.round(fill * 100);
  return `${fill < 1 ? Math.min(p, 99) : p}%`;
}

export const SPARK_UNICODE = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'] as const;
export const SPARK_ASCII = ['.', ':', '-', '=', '+', '*', '#', '@'] as const;

/**
 * One character per column for per-second counts (oldest first), summing neighbours when there
 * are more seconds than columns. Each line scales to its own peak; an empty second is a space
 * and any drop at all shows at least the lowest bar, so a single drop is never invisible.
 */
export function sparkline(perSecond: readonly number[], width: number, glyphs: readonly string[] = SPARK_UNICODE): string {
  if (width <= 0 || perSecond.length === 0) return '';
  const cols = Math.min(width, perSecond.length);
  const sums: number[] = [];
  for (let c = 0; c < cols; c++) {
    const from = Math.floor((c * perSecond.length) / cols);
    const to = Math.floor(((c + 1) * perSecond.length) / cols);
    let s = 0;
    for (let i = from; i < to; i++) s += perSecond[i] ?? 0;
    sums.push(s);
  }
  const peak = Math.max(...sums);
  const top = glyphs.length - 1;
  const out = sums.map((s) => (s <= 0 ? ' ' : glyphs[Math.max(0, Math.min(top, Math.ceil((s / peak) * glyphs.length) - 1))]!)).join('');
  return out.padEnd(width);
}

/** A fill bar such as `█████░░░░░` (`#####.....` without Unicode). */
export function bar(fill: number, width: number, unicode = true): string {
  if (width <= 0) return '';
  const n = Math.max(0, Math.min(width, Math.round(Math.min(1, Math.max(0, fill)) * width)));
  return (unicode ? '█' : '#').repeat(n) + (unicode ? '░' : '.').repeat(width - n);
}
