/**
 * The fleet view: nodes ranked by drops/s; enter drills into one node (kinds, pods, tables,
 * NIC allowances), esc goes back, q quits. Renders the poller's state and nothing else: it
 * never waits on Prometheus, so a slow server never freezes the keys.
 */
import { Box, useApp, useInput } from 'ink';
import { useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { Line, rule } from '../components/Line.js';
import type { Segs } from '../components/Line.js';
import { useTerminalSize } from '../hooks/use-terminal-size.js';
import type { Size } from '../hooks/use-terminal-size.js';
import type { Theme } from '../theme.js';
import type { FleetPoller } from '../../fleet/poller.js';
import { fleetHeader, nodeDetail, nodeRow, nodeTableHead } from './lines.js';

export interface FleetAppProps {
  poller: Pick<FleetPoller, 'subscribe' | 'getSnapshot' | 'drill'>;
  theme: Theme;
  keys: boolean;
  onQuit?: () => void;
  /** fixed size (tests) */
  size?: Size;
  /** wall clock (tests) */
  now?: () => number;
}

export function FleetApp({ poller, theme: t, keys, onQuit, size: fixed, now = Date.now }: FleetAppProps) {
  const s = useSyncExternalStore(poller.subscribe, poller.getSnapshot);
  const { columns, rows } = useTerminalSize(fixed);
  const { exit } = useApp();
  const [selected, setSelected] = useState<string | null>(null);
  const [drilled, setDrilled] = useState<string | null>(null);
  // the retry countdown and the data's age move each second: a redraw each second reads the clock
  const [, setTick] = useState(0);
  useEffect(() => {
    const id = setInterval(() => setTick((n) => n + 1), 1000);
    return () => clearInterval(id);
  }, []);

  const nodes = s.fleet?.nodes ?? [];
  // the selection follows its node when the ranking changes
  const idx = Math.max(0, selected === null ? 0 : nodes.findIndex((n) => n.node === selected));
  const node = drilled === null ? undefined : nodes.find((n) => n.node === drilled);

  // keys read what is on screen now, not what was when the handler was made
  const cur = useRef({ nodes, idx, drilled });
  cur.current = { nodes, idx, drilled };
  useInput(
    (input, key) => {
      const { nodes, idx, drilled } = cur.current;
      if (input === 'q') {
        onQuit?.();
        exit();
      } else if (drilled !== null) {
        if (key.escape || key.backspace || key.delete || key.leftArrow) {
          setDrilled(null);
          poller.drill(null);
        }
      } else if (key.upArrow || input === 'k') setSelected(nodes[Math.max(0, idx - 1)]?.node ?? null);
      else if (key.downArrow || input === 'j') setSelected(nodes[Math.min(nodes.length - 1, idx + 1)]?.node ?? null);
      else if (key.return && nodes[idx]) {
        setDrilled(nodes[idx].node);
        poller.drill(nodes[idx].node);
      }
    },
    { isActive: keys },
  );

  const h = Math.max(6, rows - 1);
  const header = fleetHeader(s, t, now());
  const body: Segs[] = [];
  const room = h - header.length - 1;
  if (drilled !== null) {
    if (!node || !s.fleet) body.push(rule(`${drilled}`, columns), [{ text: ` ${drilled} is not in the latest answer`, color: t.warn }]);
    else {
      // each section keeps its title and its first lines; what does not fit is cut at the end
      for (const sec of nodeDetail(node, s.fleet.since_s, s.pods, t)) body.push(rule(sec.title, columns), ...sec.lines);
    }
  } else if (s.fleet) {
    body.push(rule(`nodes by drops/s`, columns), nodeTableHead(s.fleet));
    const visible = room - 2;
    const first = Math.max(0, Math.min(idx - visible + 1, nodes.length - visible));
    nodes.slice(first, first + visible).forEach((n, i) => body.push(nodeRow(n, first + i === idx, t)));
    if (nodes.length === 0) body.push([{ text: ' no droptrace series in this Prometheus (is it scraping droptrace stream --metrics?)', color: t.warn }]);
  }
  const footer: Segs = [{ text: drilled !== null ? 'esc back  q quit' : '↑↓ select  ⏎ drill into node  q quit', dim: true }];
  const lines = [...header, ...body.slice(0, room)];
  while (lines.length < h - 1) lines.push([]);

  return (
    <Box flexDirection="column" width={columns}>
      {lines.map((segs, i) => (
        <Line key={i} segs={segs} width={columns} unicode={t.unicode} />
      ))}
      <Line segs={footer} width={columns} unicode={t.unicode} />
    </Box>
  );
}
