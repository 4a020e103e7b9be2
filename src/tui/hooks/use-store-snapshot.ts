/**
 * The store's snapshot as React state. Keys redraw at once; data redraws at most every
 * `intervalMs`, however fast drops arrive, and not at all when nothing changes (no polling).
 */
import { useEffect, useState } from 'react';
import type { Snapshot, TuiStore } from '../store.js';

export function useStoreSnapshot(store: TuiStore, intervalMs = 200): Snapshot {
  const [snap, setSnap] = useState(() => store.snapshot());
  useEffect(() => {
    let timer: NodeJS.Timeout | null = null;
    let last = 0;
    const flush = () => {
      timer = null;
      last = Date.now();
      setSnap(store.snapshot());
    };
    const unsubscribe = store.subscribe((urgent) => {
      if (urgent) {
        if (timer) clearTimeout(timer);
        flush();
      } else if (timer === null) {
        timer = setTimeout(flush, Math.max(0, last + intervalMs - Date.now()));
      }
    });
    // lines may have arrived between the first render and this effect
    flush();
    return () => {
      unsubscribe();
      if (timer) clearTimeout(timer);
    };
  }, [store, intervalMs]);
  return snap;
}
