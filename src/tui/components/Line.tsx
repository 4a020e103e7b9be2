/**
 * One screen line from styled segments, cut to the terminal width here (not by wrapping), so
 * every section has exactly the height the layout gave it.
 */
import { Text } from 'ink';
import { cut } from '../format.js';

export interface Seg {
  text: string;
  color?: string | undefined;
  bold?: boolean;
  dim?: boolean;
  inverse?: boolean;
}

export type Segs = Seg[];

const ASCII: Array<[RegExp, string]> = [
  [/→/g, '>'],
  [/←/g, '<'],
  [/…/g, '~'],
  [/[─━]/g, '-'],
  [/│/g, '|'],
  [/·/g, '.'],
  [/×/g, 'x'],
  [/[›▸]/g, '>'],
  [/↑/g, '^'],
  [/↓/g, 'v'],
  [/⏎/g, 'RET'],
];

export function toAscii(s: string): string {
  let out = s;
  for (const [re, to] of ASCII) out = out.replace(re, to);
  return out;
}

/** Cuts segments to `width` characters; `fill` pads the last one to the full width. */
export function fit(segs: Segs, width: number, unicode: boolean, fill = false): Segs {
  const out: Segs = [];
  let used = 0;
  for (const s of segs) {
    const text = unicode ? s.text : toAscii(s.text);
    if (used >= width) break;
    const room = width - used;
    if (text.length > room) {
      const t = cut(text, room, unicode);
      out.push({ ...s, text: t });
      used += t.length;
      break;
    }
    out.push({ ...s, text });
    used += text.length;
  }
  if (fill && used < width) {
    const last = out[out.length - 1];
    if (last) last.text += ' '.repeat(width - used);
    else out.push({ text: ' '.repeat(width) });
  }
  return out;
}

export function plain(segs: Segs): string {
  return segs.map((s) => s.text).join('');
}

export function Line({ segs, width, unicode, fill = false }: { segs: Segs; width: number; unicode: boolean; fill?: boolean }) {
  const parts = fit(segs, width, unicode, fill);
  if (parts.length === 0 || plain(parts) === '') return <Text> </Text>;
  return (
    <Text wrap="truncate-end">
      {parts.map((s, i) => (
        <Text key={i} color={s.color} bold={s.bold === true} dimColor={s.dim === true} inverse={s.inverse === true}>
          {s.text}
        </Text>
      ))}
    </Text>
  );
}

/** `─ title ─────…` across the width. */
export function rule(title: string, width: number, extra: Segs = []): Segs {
  const head = `─ ${title} `;
  const tail = extra.length > 0 ? [...extra, { text: ' ' }] : [];
  const used = head.length + tail.reduce((n, s) => n + s.text.length, 0);
  return [{ text: head, bold: true }, ...tail, { text: '─'.repeat(Math.max(0, width - used)), dim: true }];
}
