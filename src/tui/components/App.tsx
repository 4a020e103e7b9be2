/**
 * The whole screen: header, kernel tables, drop groups, detail pane, footer (or help). It
 * renders the store's snapshot and turns keys into store actions; nothing else.
 */
import { Box, useApp } from 'ink';
import { useKeys } from '../hooks/use-keys.js';
import { useStoreSnapshot } from '../hooks/use-store-snapshot.js';
import { useTerminalSize } from '../hooks/use-terminal-size.js';
import type { Size } from '../hooks/use-terminal-size.js';
import { detailShown, layoutFor } from '../layout.js';
import type { TuiStore } from '../store.js';
import type { Theme } from '../theme.js';
import { DetailPane, detailLines } from './DetailPane.js';
import { Footer } from './Footer.js';
import { GroupTable } from './GroupTable.js';
import { Header, headerLines } from './Header.js';
import { Help } from './Help.js';
import { Line } from './Line.js';
import { TablesPanel, tablesLines } from './TablesPanel.js';

export interface AppProps {
  store: TuiStore;
  theme: Theme;
  /** fixed size instead of the terminal's (tests, captures) */
  size?: Size;
  /** false when stdin is not a terminal: no raw mode, no keys */
  keys?: boolean;
  /** replay speed, shown in the header */
  speed?: number;
  /** called on `q`; the default unmounts the app */
  onQuit?: () => void;
}

export function App({ store, theme, size: fixed, keys = true, speed, onQuit }: AppProps) {
  const snap = useStoreSnapshot(store);
  const { columns: width, rows } = useTerminalSize(fixed);
  const { exit } = useApp();
  const wantedTables = tablesLines(snap, theme, width, 99).length;
  const open = detailShown(snap.detailOpen, width, rows);
  const wantedDetail = open ? detailLines(snap, theme, width, 99).length : 0;
  // the group table's title and column names, and a row per group (or the "no drops" line)
  const wantedGroups = 2 + Math.max(1, snap.groups.length);
  const l = layoutFor(rows, open, wantedTables, wantedDetail, wantedGroups);
  useKeys(store, { onQuit: onQuit ?? (() => exit()), page: Math.max(1, l.groups - 3), active: keys, detailOpen: open });
  return (
    <Box flexDirection="column" width={width}>
      {l.header === 3 ? (
        <Header snap={snap} theme={theme} width={width} speed={speed} />
      ) : (
        headerLines(snap, theme, width, speed)
          .slice(0, l.header)
          .map((segs, i) => <Line key={i} segs={segs} width={width} unicode={theme.unicode} />)
      )}
      {snap.help ? (
        <Help snap={snap} theme={theme} width={width} budget={l.body} />
      ) : (
        <>
          <TablesPanel snap={snap} theme={theme} width={width} budget={l.tables} />
          <GroupTable snap={snap} theme={theme} width={width} budget={l.groups} />
          <DetailPane snap={snap} theme={theme} width={width} budget={l.detail} />
        </>
      )}
      <Footer snap={snap} theme={theme} width={width} keys={keys} detailOpen={open} />
    </Box>
  );
}
