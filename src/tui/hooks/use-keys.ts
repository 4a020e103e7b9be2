/**
 * Keys → store actions. While a filter is typed, every printable key goes into the filter.
 * Ink hands over a run of plain characters as one input (a paste, fast typing, tmux
 * send-keys): it is split here so `s` followed by Enter is two keys, not one unknown one.
 */
import { useInput } from 'ink';
import type { Key } from 'ink';
import type { TuiStore } from '../store.js';

const NO_KEY: Key = {
  upArrow: false,
  downArrow: false,
  leftArrow: false,
  rightArrow: false,
  pageDown: false,
  pageUp: false,
  home: false,
  end: false,
  return: false,
  escape: false,
  ctrl: false,
  shift: false,
  tab: false,
  backspace: false,
  delete: false,
  meta: false,
  super: false,
  hyper: false,
  capsLock: false,
  numLock: false,
};

function charKey(ch: string): [string, Key] {
  if (ch === '\r' || ch === '\n') return ['', { ...NO_KEY, return: true }];
  if (ch === '\x7f' || ch === '\b') return ['', { ...NO_KEY, backspace: true }];
  return [ch, NO_KEY];
}

/** `detailOpen`: whether the detail pane is on screen now (it may be open by default, src/tui/layout.ts) */
export function useKeys(store: TuiStore, o: { onQuit: () => void; page: number; active: boolean; detailOpen: boolean }): void {
  const act = (input: string, key: Key) => {
    if (store.editing) {
      if (key.return) store.commitFilter();
      else if (key.escape) store.cancelFilter();
      else if (key.backspace || key.delete) store.backspaceFilter();
      else if (input !== '' && !key.ctrl && !key.meta && input >= ' ') store.typeFilter(input);
      return;
    }
    if (key.upArrow || input === 'k') store.moveSelection(-1);
    else if (key.downArrow || input === 'j') store.moveSelection(1);
    else if (key.pageUp) store.moveSelection(-o.page);
    else if (key.pageDown) store.moveSelection(o.page);
    else if (key.home) store.selectEdge('first');
    else if (key.end) store.selectEdge('last');
    else if (key.return) store.setDetail(!o.detailOpen);
    else if (key.escape) store.back(o.detailOpen);
    else if (input === 'g') store.cycleGroupBy();
    else if (input === 's') store.cycleSort();
    else if (input === '/') store.editFilter();
    else if (input === 'p') store.togglePause();
    else if (input === 'c') store.clear();
    else if (input === 'b') store.toggleBenign();
    else if (input === '?') store.toggleHelp();
    else if (input === 'q') o.onQuit();
  };
  useInput(
    (input, key) => {
      if (input.length > 1 && !key.ctrl && !key.meta && !input.includes('\x1b')) {
        for (const ch of input) act(...charKey(ch));
      } else act(input, key);
    },
    { isActive: o.active },
  );
}
