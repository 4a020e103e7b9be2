/**
 * Global sysctls across processes: a lab run writes the originals to GLOBAL_STATE before it
 * changes anything, so two runs never stack their changes and a run killed with SIGKILL is
 * repaired by the next one.
 */
import { readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { sysctlPath } from './proc.js';

export const STATE_DIR = '/run/droptrace';
export const GLOBAL_STATE = `${STATE_DIR}/lab-global-sysctl.json`;

export interface GlobalState {
  pid: number;
  saved: Record<string, string>;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Put back the values a dead lab run (SIGKILL, power loss of the VM ...) left changed. */
export function repairStaleGlobals(log: (l: string) => void): boolean {
  let raw: string;
  try {
    raw = readFileSync(GLOBAL_STATE, 'utf8');
  } catch {
    return true;
  }
  let st: GlobalState | null = null;
  try {
    st = JSON.parse(raw) as GlobalState;
  } catch {
    // written by a run killed between open and write: stale once it is a few seconds old
    const age = Date.now() - statSync(GLOBAL_STATE).mtimeMs;
    if (age < 5000) return false;
  }
  if (st && st.pid !== process.pid && pidAlive(st.pid)) return false;
  if (st) {
    for (const [key, value] of Object.entries(st.saved)) {
      writeFileSync(sysctlPath(key), value);
      log(`restored ${key}=${value} left changed by lab run pid ${st.pid}, which is gone`);
    }
  }
  try {
    unlinkSync(GLOBAL_STATE);
  } catch {
    // another run repaired it first
  }
  return true;
}
