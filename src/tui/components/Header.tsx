/**
 * Three lines: who and where (node, kernel, uptime, state), how fast and what was lost (lost
 * events are always written, in the alarm colour when not zero), and which probes are live.
 */
import { count, duration, rate } from '../format.js';
import type { ProbeInfo, Snapshot } from '../store.js';
import type { Theme } from '../theme.js';
import { Line } from './Line.js';
import type { Segs } from './Line.js';

export const HEADER_LINES = 3;

function stateSegs(s: Snapshot, t: Theme, speed: number | undefined): Segs {
  if (s.paused) return [{ text: ` PAUSED +${count(s.newWhilePaused)} new `, inverse: true, bold: true, color: t.warn }];
  if (s.ended) return [{ text: ` ${s.ended.toUpperCase()} `, inverse: true }];
  if (s.source === 'replay') return [{ text: ` REPLAY${speed !== undefined && speed !== 1 ? ` ×${speed}` : ''} `, inverse: true, color: t.accent }];
  if (s.start === null) return [{ text: ' ATTACHING… ', inverse: true, color: t.warn }];
  return [{ text: ' LIVE ', inverse: true, bold: true, color: t.good }];
}

export function headerLines(s: Snapshot, t: Theme, width: number, speed?: number): Segs[] {
  const st = s.start;
  // the state first: PAUSED or ENDED must never be the part that is cut off
  const l1: Segs = [
    { text: 'droptrace ', bold: true, color: t.accent },
    ...stateSegs(s, t, speed),
    { text: '  node ', dim: true },
    { text: st?.node ?? '?' },
    { text: '  kernel ', dim: true },
    { text: st?.kernel ?? '?' },
    { text: '  up ', dim: true },
    { text: s.uptimeMs !== null ? duration(s.uptimeMs) : '-' },
  ];

  const lost = s.stats?.lost;
  // while detail is shed, lines undercount: the kernel's exact counter gives the rate
  const r = s.shedDetail > 0 && s.kernelRate !== null ? s.kernelRate : s.rate;
  const l2: Segs = [
    { text: rate(r), bold: true },
    { text: ' drops/s  ', dim: true },
    { text: 'lost ', dim: true },
  ];
  if (!lost) l2.push({ text: '? (no stats line yet)', dim: true });
  else if (lost.total > 0) {
    l2.push({ text: `${count(lost.total)} (ring ${count(lost.ringBuffer)}, user ${count(lost.userspace)})`, bold: true, color: t.bad });
  } else l2.push({ text: '0', color: t.good });
  l2.push({ text: '  total ', dim: true }, { text: count(s.total) });
  // benign drops are in the total; the groups leave them out until `b`
  if (s.benignDrops > 0) l2.push({ text: `  benign ${count(s.benignDrops)} ${s.showBenign ? 'shown' : 'hidden'}`, dim: true });
  if (s.stats?.kernelDrops != null) l2.push({ text: '  kernel exact ', dim: true }, { text: count(s.stats.kernelDrops) });
  const errs: string[] = [];
  if (s.shedDetail > 0) errs.push(`detail shed ${count(s.shedDetail)}`);
  if (s.stats && s.stats.decodeErrors > 0) errs.push(`decode errors ${count(s.stats.decodeErrors)}`);
  if (s.stats && s.stats.enrichmentFailures > 0) errs.push(`enrichment failures ${count(s.stats.enrichmentFailures)}`);
  if (s.stats && s.stats.countersFailures > 0) errs.push(`table samples failed ${count(s.stats.countersFailures)}`);
  if (s.foldedDrops > 0) errs.push(`${count(s.foldedDrops)} drops in (other): too many keys`);
  if (s.ignoredLines > 0) errs.push(`${count(s.ignoredLines)} unknown lines skipped`);
  for (const e of errs) l2.push({ text: `  ${e}`, color: t.warn });
  if (st?.filterNetns != null) l2.push({ text: `  only netns ${st.filterNetns}`, color: t.warn });

  return [l1, l2, probesLine(s, t, width)];
}

/**
 * One entry per probe: live (with the hook that made it), waiting for its module, or not (with
 * why). When that does not fit, the short form (names only) and a pointer to `?`, which lists
 * every hook and reason.
 */
function probesLine(s: Snapshot, t: Theme, width: number): Segs {
  const st = s.start;
  const head: Segs = [{ text: 'probes ', dim: true }];
  if (!st) return [...head, { text: s.source === 'live' ? 'attaching…' : 'no start line in this recording', dim: true }];
  if (st.probes.length === 0) return [...head, { text: 'none listed', color: t.warn }];
  const byProbe = new Map<string, ProbeInfo[]>();
  for (const p of st.probes) byProbe.set(p.probe, [...(byProbe.get(p.probe) ?? []), p]);
  // three forms, longest first: hooks and reasons; hooks of live probes only; names only
  const full: Segs = [];
  const mid: Segs = [];
  const short: Segs = [];
  let down = 0;
  for (const [name, hooks] of byProbe) {
    const live = hooks.find((h) => h.state === 'attached');
    if (live) {
      full.push({ text: `${t.ok} ${name} ${live.hook}  `, color: t.good });
      mid.push({ text: `${t.ok} ${name} ${live.hook}  `, color: t.good });
      short.push({ text: `${t.ok} ${name} `, color: t.good });
    } else if (hooks.some((h) => h.state === 'waiting')) {
      // not a failure: it attaches when its module loads (the stats line brings the change)
      const why = hooks.find((h) => h.state === 'waiting')?.why ?? 'waiting';
      const wait = t.unicode ? '…' : '~';
      full.push({ text: `${wait} ${name}: ${why}  `, dim: true });
      mid.push({ text: `${wait} ${name} waiting  `, dim: true });
      short.push({ text: `${wait} ${name} `, dim: true });
    } else {
      down++;
      const why = hooks.find((h) => h.why)?.why ?? hooks[0]?.state ?? '?';
      full.push({ text: `${t.no} ${name}: ${why}  `, color: t.warn });
      mid.push({ text: `${t.no} ${name}  `, color: t.warn });
      short.push({ text: `${t.no} ${name} `, color: t.warn });
    }
  }
  const why: Segs = down > 0 ? [{ text: '(? why)', dim: true }] : [];
  const len = (x: Segs) => x.reduce((n, seg) => n + seg.text.length, 0);
  if (len(head) + len(full) <= width) return [...head, ...full];
  if (len(head) + len(mid) + len(why) <= width) return [...head, ...mid, ...why];
  return [...head, ...short, ...why];
}


export function Header({ snap, theme, width, speed }: { snap: Snapshot; theme: Theme; width: number; speed?: number | undefined }) {
  return (
    <>
      {headerLines(snap, theme, width, speed).map((segs, i) => (
        <Line key={i} segs={segs} width={width} unicode={theme.unicode} />
      ))}
    </>
  );
}
