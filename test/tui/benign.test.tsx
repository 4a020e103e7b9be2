/**
 * Benign drops in the TUI: left out of the groups by default, counted in the header (and in the
 * total), shown with `b`, with why in the detail pane. The recording predates the `benign`
 * field: its IPv6 multicast drops are marked here as the stream marks them now.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { benignWhy } from '../../src/pipeline/benign.js';
import type { StreamLine } from '../../src/pipeline/events.js';
import { fixtureLines, KEY, loadedStore, renderStore } from './helpers.js';

let unmount: (() => void) | null = null;
afterEach(() => {
  unmount?.();
  unmount = null;
});

function marked(): StreamLine[] {
  return fixtureLines().map((l) => {
    if (l.type !== 'drop') return l;
    const why = benignWhy(l.reason, l.location);
    return why === null ? l : { ...l, benign: true as const, benign_why: why };
  });
}

const lines = (frame: string) => frame.split('\n');
const kinds = (frame: string) => {
  const ls = lines(frame);
  const at = ls.findIndex((l) => l.startsWith('─ drops by'));
  const out: string[] = [];
  for (const l of ls.slice(at + 2)) {
    if (l.trim() === '' || l.startsWith('─ ')) break;
    out.push(l.slice(1).split(' ')[0]!);
  }
  return out;
};

describe('benign drops in droptrace top', () => {
  it('are hidden from the groups by default, counted in the header and the total, behind b', async () => {
    const store = loadedStore(marked());
    // the recording's 10 IPv6 multicast drops at ip6_mc_input
    expect(store.snapshot().benignDrops).toBe(10);
    const r = await renderStore(store, 100, 30);
    unmount = r.unmount;
    expect(kinds(r.frame())).toEqual(['netfilter_rule', 'martian_source', 'no_socket']);
    expect(lines(r.frame())[1]).toBe('42.2 drops/s  lost 0  total 281  benign 10 hidden  kernel exact 281  only netns 4026532528');
    expect(lines(r.frame()).at(-1)).toBe('↑↓ select  ⏎ close  g group  s sort  / filter  b benign  p pause  c clear  q quit  ? help');

    await r.press('b');
    expect(kinds(r.frame())).toEqual(['netfilter_rule', 'martian_source', 'not_specified', 'no_socket']);
    expect(lines(r.frame())[1]).toMatch(/ total 281 {2}benign 10 shown /);
    expect(lines(r.frame()).at(-1)).toMatch(/ b hide benign /);
    await r.press(KEY.down, KEY.down);
    const at = lines(r.frame()).findIndex((l) => l.startsWith('benign '));
    expect(lines(r.frame()).slice(at, at + 2)).toEqual([
      'benign  IPv6 multicast to a group no socket on this interface joined (MLD reports, router',
      '        solicitations): every IPv6 link carries it',
    ]);

    await r.press('b');
    expect(kinds(r.frame())).toEqual(['netfilter_rule', 'martian_source', 'no_socket']);
  });

  it('give way in the footer at 80 columns: c clear (listed in help) leaves room for b', async () => {
    const r = await renderStore(loadedStore(marked()), 80, 24);
    unmount = r.unmount;
    expect(lines(r.frame()).at(-1)).toBe('↑↓ select  ⏎ close  g group  s sort  / filter  b benign  p pause  q quit  ? help');
    await r.press('?');
    expect(lines(r.frame()).find((l) => l.startsWith('  b '))).toBe('  b          show or hide benign drops (routine on every node: see the detail)');
  });

  it('leave the footer and header as they were when there are none', async () => {
    const r = await renderStore(loadedStore(), 100, 30);
    unmount = r.unmount;
    expect(lines(r.frame())[1]).toBe('42.2 drops/s  lost 0  total 281  kernel exact 281  only netns 4026532528');
    expect(lines(r.frame()).at(-1)).toBe('↑↓ select  ⏎ close  g group  s sort  / filter  p pause  c clear  q quit  ? help');
  });
});
