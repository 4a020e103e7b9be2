import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DroptraceError } from '../../src/errors.js';
import { PodIndex } from '../../src/enrich/pod-index.js';
import { loadPodsFile, parsePodsFile } from '../../src/enrich/pods-file.js';

const message = (text: string): string => {
  try {
    parsePodsFile(text, 'pods.json');
  } catch (e) {
    expect(e).toBeInstanceOf(DroptraceError);
    const d = e as DroptraceError;
    expect([d.code, d.stage, d.exitCode]).toEqual(['E_PODS_FILE', 'input', 2]);
    expect(d.line()).not.toContain('\n');
    return d.line();
  }
  throw new Error('no error');
};

describe('parsePodsFile', () => {
  it('reads pods with IPs (canonical), netns, host network and lifetimes', () => {
    const text = `[
  {"namespace": "shop", "name": "web-0", "uid": "u-web", "ips": ["198.18.0.7", "FD99::7"], "netns": 4026532300},
  {"namespace": "kube-system", "name": "kube-proxy-x", "uid": "u-kp", "ips": ["10.0.0.5"], "hostNetwork": true},
  {"namespace": "lab", "name": "old", "uid": "u-old", "ips": ["198.18.0.9"], "end": "2026-03-01T10:00:00Z"},
  {"namespace": "lab", "name": "new", "uid": "u-new", "ips": ["198.18.0.9"], "start": "2026-03-01T10:00:05Z", "netns": [1, 2]}
]`;
    expect(parsePodsFile(text, 'pods.json')).toEqual([
      { namespace: 'shop', name: 'web-0', uid: 'u-web', ips: ['198.18.0.7', 'fd99::7'], netns: [4026532300] },
      { namespace: 'kube-system', name: 'kube-proxy-x', uid: 'u-kp', ips: ['10.0.0.5'], netns: [], hostNetwork: true },
      { namespace: 'lab', name: 'old', uid: 'u-old', ips: ['198.18.0.9'], netns: [], end: Date.parse('2026-03-01T10:00:00Z') },
      { namespace: 'lab', name: 'new', uid: 'u-new', ips: ['198.18.0.9'], netns: [1, 2], start: Date.parse('2026-03-01T10:00:05Z') },
    ]);
    expect(parsePodsFile('{"pods": []}', 'pods.json')).toEqual([]);
  });

  it('reads the same pods written in YAML, with anchors, merge keys and block scalars', () => {
    const text = `# a lab's pods
pods:
  - &shop
    namespace: shop
    name: >-
      web-0
    uid: u-web
    ips: [198.18.0.7, "FD99::7"]
    netns: 4026532300
  - <<: *shop
    name: web-1
    uid: u-web-1
    ips:
      - 198.18.0.8
    start: 2026-03-01T10:00:05Z
`;
    expect(parsePodsFile(text, 'pods.yaml')).toEqual([
      { namespace: 'shop', name: 'web-0', uid: 'u-web', ips: ['198.18.0.7', 'fd99::7'], netns: [4026532300] },
      { namespace: 'shop', name: 'web-1', uid: 'u-web-1', ips: ['198.18.0.8'], netns: [4026532300], start: Date.parse('2026-03-01T10:00:05Z') },
    ]);
  });

  it('names the line and the field of every mistake, in one line', () => {
    expect(
      [
        '',
        '[\n  {"namespace": "a",\n   "name": "b"\n   "uid": "c"}\n]',
        '[{"namespace": "a", "name": "b", "uid": "c", "uid": "d"}]',
        '{"items": []}',
        '[\n  "web-0"\n]',
        '[\n  {"namespace": "a",\n   "name": "b"}\n]',
        '[{"namespace": "a", "name": "", "uid": "c"}]',
        '[\n {"namespace": "a", "name": "b", "uid": "c",\n  "ip": "1.2.3.4"}]',
        '[\n {"namespace": "a", "name": "b", "uid": "c", "ips": [\n   "198.18.0.1",\n   "198.18.0.256"]}]',
        '[{"namespace": "a", "name": "b", "uid": "c", "ips": "198.18.0.1"}]',
        '[{"namespace": "a", "name": "b", "uid": "c", "netns": "4026532300"}]',
        '[{"namespace": "a", "name": "b", "uid": "c", "netns": 4026532300, "hostNetwork": true}]',
        '[{"namespace": "a", "name": "b", "uid": "c", "hostNetwork": "yes"}]',
        '[{"namespace": "a", "name": "b", "uid": "c", "start": "yesterday"}]',
        '[{"namespace": "a", "name": "b", "uid": "c", "start": "2026-03-01T10:00:05Z", "end": "2026-03-01T10:00:00Z"}]',
        '[\n {"namespace": "a", "name": "b", "uid": "c"},\n {"namespace": "a", "name": "d", "uid": "c"}\n]',
        '[\n {"namespace": "a", "name": "b", "uid": "c", "ips": ["198.18.0.1"]},\n {"namespace": "a", "name": "d", "uid": "e", "ips": ["198.18.0.1"]}\n]',
        '[{"namespace": "a", "name": "b", "uid": "c"}] x',
        '- namespace: a\n  name: b\n  uid: c\n  ips:\n  - 198.18.0.2\n  - nope\n',
        'pods:\n- &base {namespace: a, name: b, uid: c}\n- *base\n',
        'pods:\n  - namespace: a\n    name: |\n      b\n    uid: c\n    hostNetwork: yes\n',
        '[{"namespace": "a", "name": "b", "uid": "c", "ips": &x [*x]}]',
      ].map(message),
    ).toEqual([
      'pods file pods.json: line 1: expected a list of pods [{"namespace", "name", "uid", "ips", ...}] or {"pods": [...]}',
      'pods file pods.json: line 4 column 4: missing , between flow map items',
      'pods file pods.json: line 1 column 46: map keys must be unique',
      'pods file pods.json: line 1: expected a list of pods [{"namespace", "name", "uid", "ips", ...}] or {"pods": [...]}',
      'pods file pods.json: line 2: pods[0]: expected an object {"namespace", "name", "uid", ...}',
      'pods file pods.json: line 2: pods[0]: missing "uid"',
      'pods file pods.json: line 1: pods[0].name: expected a non-empty string',
      'pods file pods.json: line 3: pods[0].ip: unknown field (expected namespace, name, uid, ips, netns, hostNetwork, start, end)',
      'pods file pods.json: line 4: pods[0].ips[1]: "198.18.0.256" is not an IP address',
      'pods file pods.json: line 1: pods[0].ips: expected a list of IP addresses',
      'pods file pods.json: line 1: pods[0].netns: expected a netns inode (a positive integer, as `ip netns identify` or `lsns -t net` show) or a list of them',
      "pods file pods.json: line 1: pods[0].netns: a hostNetwork pod shares the host's netns: drop this field",
      'pods file pods.json: line 1: pods[0].hostNetwork: expected true or false',
      'pods file pods.json: line 1: pods[0].start: expected an ISO 8601 time such as "2026-01-31T09:04:30Z"',
      'pods file pods.json: line 1: pods[0].end: is before start',
      `pods file pods.json: line 3: pods[1].uid: "c" is also pods[0]'s`,
      `pods file pods.json: line 3: pods[1].ips: 198.18.0.1 is also pods[0]'s at the same time (give them "start"/"end" times)`,
      'pods file pods.json: line 1 column 47: unexpected scalar at node end',
      'pods file pods.json: line 6: pods[0].ips[1]: "nope" is not an IP address',
      // an alias's fields are where the anchored mapping wrote them
      `pods file pods.json: line 2: pods[1].uid: "c" is also pods[0]'s`,
      'pods file pods.json: line 6: pods[0].hostNetwork: expected true or false',
      'pods file pods.json: line 1 column 57: alias *x refers to a node that contains it',
    ]);
  });

  it('loads a file into the index, and says when it cannot read it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dt-pods-'));
    try {
      const path = join(dir, 'pods.json');
      writeFileSync(path, JSON.stringify([{ namespace: 'lab', name: 'p', uid: 'u', ips: ['198.18.3.3'], netns: 99 }]));
      const idx = new PodIndex();
      expect(loadPodsFile(path, idx)).toBe(1);
      expect(idx.byNetns(99, Date.now())?.pod).toEqual({ namespace: 'lab', name: 'p', uid: 'u' });
      expect(idx.byIp('198.18.3.3', 0)?.uid).toBe('u');
      expect(() => loadPodsFile(join(dir, 'nope.json'), idx)).toThrow(`pods file ${join(dir, 'nope.json')}: cannot read it (ENOENT)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
