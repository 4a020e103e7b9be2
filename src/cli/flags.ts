/**
 * The command line's flag values: each parser turns a flag's text into its value or throws
 * commander's InvalidArgumentError, which the command line turns into one line and exit 2.
 */
import { InvalidArgumentError } from 'commander';
import type { NicSelection } from '../host/index.js';
import { parseMetricsAddress } from '../sinks/metrics-server.js';

export function seconds(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+(\.\d+)?$/.test(v.trim()) || !Number.isFinite(n) || n <= 0 || n > 86400 * 365) {
      throw new InvalidArgumentError(`${flag} wants a positive number of seconds, got "${v}"`);
    }
    return n;
  };
}

export function netnsInode(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) <= 0 || Number(v) > 0xffffffff) {
    throw new InvalidArgumentError(`--netns wants a namespace inode such as 4026531840 (ls -Li /proc/PID/ns/net), got "${v}"`);
  }
  return Number(v);
}

export function mebibytes(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 1024 || (n & (n - 1)) !== 0) {
    throw new InvalidArgumentError(`--ring-size wants a power of two of MiB between 1 and 1024, got "${v}"`);
  }
  return n;
}

export function backlogMiB(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 65536) throw new InvalidArgumentError(`--backlog wants MiB from 1 to 65536, got "${v}"`);
  return Number(v);
}

export function nicList(v: string): NicSelection {
  if (v === 'all' || v === 'physical' || v === 'none') return v;
  const names = v.split(',').map((s) => s.trim());
  if (names.some((n) => !/^[A-Za-z0-9_.:@-]{1,15}$/.test(n))) {
    throw new InvalidArgumentError(`--nics wants all, physical, none or a comma-separated list of interface names, got "${v}"`);
  }
  return names;
}

export function pcapMebibytes(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 1024 * 1024) throw new InvalidArgumentError(`--pcap-max wants a whole number of MiB from 1 to 1048576, got "${v}"`);
  return Number(v);
}

export function secondsOrZero(flag: string) {
  const positive = seconds(flag);
  return (v: string): number => (v.trim() === '0' ? 0 : positive(v));
}

export function count(flag: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) > 1_000_000) throw new InvalidArgumentError(`${flag} wants a whole number from 0 to 1000000, got "${v}"`);
    return Number(v);
  };
}

/** `--stack-per-key`: at least one (no stacks is leaving out --stack), at most MAX_STACK_PER_KEY. */
export function stackPerKey(max: number) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max) throw new InvalidArgumentError(`--stack-per-key wants a whole number from 1 to ${max}, got "${v}"`);
    return Number(v);
  };
}

/** `--metrics [ADDR:]PORT`: checked while parsing, so a bad address is exit 2 before anything starts. */
export function metricsAddress(v: string): string {
  parseMetricsAddress(v);
  return v;
}

/** `--speed`: the replay's pace, 0 (everything at once) or more. */
export function speed(v: string): number {
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || !Number.isFinite(n)) throw new InvalidArgumentError(`--speed wants a number >= 0, got "${v}"`);
  return n;
}
