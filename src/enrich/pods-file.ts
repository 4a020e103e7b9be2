/**
 * `--pods FILE`: pods of a lab or a host without Kubernetes, as JSON or YAML:
 *
 *   [{ "namespace": "shop", "name": "web-1", "uid": "8d5c…", "ips": ["10.0.3.7", "fd00::7"],
 *      "netns": 4026532320 },
 *    { "namespace": "kube-system", "name": "kube-proxy-x", "uid": "…", "hostNetwork": true }]
 *
 * (or `{"pods": [...]}`, or the same in YAML). Optional `start`/`end` (ISO 8601) bound a pod's
 * lifetime, so one IP may appear twice when the times say who had it when. Any mistake is a
 * one-line error naming the line and the field.
 */
import { readFileSync } from 'node:fs';
import { DroptraceError } from '../errors.js';
import { canonicalIp } from './ip.js';
import { YamlSyntaxError, parseYamlWithLines } from './yaml-doc.js';
import type { Value } from './yaml-doc.js';
import type { PodIndex, PodInfo } from './pod-index.js';

const FIELDS = ['namespace', 'name', 'uid', 'ips', 'netns', 'hostNetwork', 'start', 'end'];
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/;

type ValueObject = { [k: string]: Value };
const isObject = (v: Value | undefined): v is ValueObject => typeof v === 'object' && v !== null && !Array.isArray(v);

function fileError(path: string, detail: string): DroptraceError {
  return new DroptraceError('E_PODS_FILE', 'input', `pods file ${path}: ${detail}`);
}

/** Parses the text of a pods file; `path` is only used in messages. */
export function parsePodsFile(text: string, path: string): PodInfo[] {
  let doc;
  try {
    doc = parseYamlWithLines(text);
  } catch (e) {
    if (e instanceof YamlSyntaxError) throw fileError(path, `line ${e.line} column ${e.column}: ${e.message}`);
    throw e;
  }
  const at = (line: number | undefined, field: string, problem: string) => fileError(path, `line ${line ?? 1}: ${field}: ${problem}`);

  let list: Value[];
  let listNode: object;
  if (Array.isArray(doc.value)) {
    list = doc.value;
    listNode = doc.value;
  } else if (isObject(doc.value) && Array.isArray(doc.value.pods) && Object.keys(doc.value).length === 1) {
    list = doc.value.pods;
    listNode = doc.value.pods;
  } else {
    throw fileError(path, 'line 1: expected a list of pods [{"namespace", "name", "uid", "ips", ...}] or {"pods": [...]}');
  }

  const out: PodInfo[] = [];
  const uids = new Map<string, number>();
  const ipOwners = new Map<string, Array<{ i: number; start: number; end: number }>>();
  list.forEach((entry, i) => {
    const where = `pods[${i}]`;
    const entryLine = doc.memberLine(listNode, i);
    if (!isObject(entry)) throw at(entryLine, where, 'expected an object {"namespace", "name", "uid", ...}');
    const lineOf = (k: string) => doc.memberLine(entry, k) ?? entryLine;
    for (const k of Object.keys(entry)) {
      if (!FIELDS.includes(k)) throw at(lineOf(k), `${where}.${k}`, `unknown field (expected ${FIELDS.join(', ')})`);
    }
    const text = (k: 'namespace' | 'name' | 'uid'): string => {
      const v = entry[k];
      if (v === undefined) throw at(entryLine, where, `missing "${k}"`);
      if (typeof v !== 'string' || v === '') throw at(lineOf(k), `${where}.${k}`, 'expected a non-empty string');
      return v;
    };
    const namespace = text('namespace');
    const name = text('name');
    const uid = text('uid');
    const dup = uids.get(uid);
    if (dup !== undefined) throw at(lineOf('uid'), `${where}.uid`, `"${uid}" is also pods[${dup}]'s`);
    uids.set(uid, i);

    const hostNetwork = entry.hostNetwork;
    if (hostNetwork !== undefined && typeof hostNetwork !== 'boolean') {
      throw at(lineOf('hostNetwork'), `${where}.hostNetwork`, 'expected true or false');
    }
    const time = (k: 'start' | 'end'): number | undefined => {
      const v = entry[k];
      if (v === undefined) return undefined;
      const ms = typeof v === 'string' && ISO_TIME.test(v) ? Date.parse(v) : NaN;
      if (Number.isNaN(ms)) throw at(lineOf(k), `${where}.${k}`, 'expected an ISO 8601 time such as "2026-01-31T09:04:30Z"');
      return ms;
    };
    const start = time('start');
    const end = time('end');
    if (start !== undefined && end !== undefined && end < start) throw at(lineOf('end'), `${where}.end`, 'is before start');

    const ips: string[] = [];
    const rawIps = entry.ips;
    if (rawIps !== undefined) {
      if (!Array.isArray(rawIps)) throw at(lineOf('ips'), `${where}.ips`, 'expected a list of IP addresses');
      rawIps.forEach((raw, j) => {
        const ip = typeof raw === 'string' ? canonicalIp(raw) : null;
        if (ip === null) throw at(doc.memberLine(rawIps, j) ?? lineOf('ips'), `${where}.ips[${j}]`, `${JSON.stringify(raw)} is not an IP address`);
        ips.push(ip);
      });
    }

    let netns: number[] = [];
    const rawNetns = entry.netns;
    if (rawNetns !== undefined) {
      const list = Array.isArray(rawNetns) ? rawNetns : [rawNetns];
      if (!list.every((n) => typeof n === 'number' && Number.isSafeInteger(n) && n > 0)) {
        throw at(lineOf('netns'), `${where}.netns`, 'expected a netns inode (a positive integer, as `ip netns identify` or `lsns -t net` show) or a list of them');
      }
      netns = list as number[];
      if (hostNetwork === true) throw at(lineOf('netns'), `${where}.netns`, "a hostNetwork pod shares the host's netns: drop this field");
    }

    if (hostNetwork !== true) {
      const s = start ?? -Infinity;
      const e = end ?? Infinity;
      for (const ip of ips) {
        const owners = ipOwners.get(ip) ?? [];
        const clash = owners.find((o) => o.start < e && s < o.end);
        if (clash) {
          throw at(lineOf('ips'), `${where}.ips`, `${ip} is also pods[${clash.i}]'s at the same time (give them "start"/"end" times)`);
        }
        owners.push({ i, start: s, end: e });
        ipOwners.set(ip, owners);
      }
    }

    const info: PodInfo = { namespace, name, uid, ips, netns };
    if (hostNetwork) info.hostNetwork = true;
    if (start !== undefined) info.start = start;
    if (end !== undefined) info.end = end;
    out.push(info);
  });
  return out;
}

/** Reads `path` and adds its pods to `index`; returns how many. */
export function loadPodsFile(path: string, index: PodIndex): number {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw fileError(path, `cannot read it (${code})`);
  }
  const pods = parsePodsFile(text, path);
  for (const p of pods) index.upsert(p, 'file');
  return pods.length;
}
