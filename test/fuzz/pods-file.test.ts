/**
 * Property tests of the `--pods FILE` parser and the line-keeping YAML/JSON reader under it: any
 * text either parses or fails as one line with exit 2 naming the file, never as a TypeError or a
 * stack trace; well-formed files read back exactly.
 */
import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DroptraceError } from '../../src/errors.js';
import { YamlSyntaxError, parseYamlWithLines } from '../../src/enrich/yaml-doc.js';
import { parsePodsFile } from '../../src/enrich/pods-file.js';

/** parsePodsFile's outcome: the pods, or the one line a user would see. */
function outcome(text: string): { ok: true; pods: ReturnType<typeof parsePodsFile> } | { ok: false; line: string } {
  try {
    return { ok: true, pods: parsePodsFile(text, 'pods.json') };
  } catch (e) {
    // anything but a DroptraceError would reach the user as "internal error"
    expect(e).toBeInstanceOf(DroptraceError);
    const d = e as DroptraceError;
    expect([d.code, d.stage, d.exitCode]).toEqual(['E_PODS_FILE', 'input', 2]);
    return { ok: false, line: d.line() };
  }
}

const oneLine = (line: string) => {
  expect(line).not.toMatch(/[\n\r]/);
  expect(line.startsWith('pods file pods.json: ')).toBe(true);
};

/** JSON values that look like pods files: lists of objects with the real field names. */
const podish = fc.array(
  fc.record(
    {
      namespace: fc.oneof(fc.string(), fc.jsonValue()),
      name: fc.oneof(fc.string(), fc.jsonValue()),
      uid: fc.oneof(fc.uuid(), fc.jsonValue()),
      ips: fc.oneof(fc.array(fc.oneof(fc.ipV4(), fc.ipV6(), fc.string())), fc.jsonValue()),
      netns: fc.oneof(fc.nat(), fc.array(fc.integer()), fc.jsonValue()),
      hostNetwork: fc.oneof(fc.boolean(), fc.jsonValue()),
      start: fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.string()),
      end: fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.string()),
    },
    { requiredKeys: [] },
  ),
  { maxLength: 5 },
);

describe('parsePodsFile (property)', () => {
  it('any text: pods or one line with exit 2, never another error', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
        const r = outcome(text);
        if (!r.ok) oneLine(r.line);
      }),
      { numRuns: 3000 },
    );
  });

  it('any JSON document: pods or one line with exit 2', () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), podish.map((p) => JSON.stringify(p, null, 2)), podish.map((p) => JSON.stringify({ pods: p }))), (text) => {
        const r = outcome(text);
        if (!r.ok) {
          oneLine(r.line);
          // a mistake is located by line, within the file
          const m = /: line (\d+)/.exec(r.line);
          if (m) expect(Number(m[1])).toBeLessThanOrEqual(text.split('\n').length);
        } else {
          for (const p of r.pods) for (const ip of p.ips ?? []) expect(isIP(ip)).not.toBe(0);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('reads back well-formed pods exactly', () => {
    const pod = fc.record({
      namespace: fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/),
      name: fc.stringMatching(/^[a-z0-9]([-a-z0-9.]{0,30}[a-z0-9])?$/),
      uid: fc.uuid(),
      ips: fc.uniqueArray(fc.ipV4(), { maxLength: 3 }),
      netns: fc.uniqueArray(fc.integer({ min: 1, max: 0xffffffff }), { minLength: 1, maxLength: 2 }),
    });
    fc.assert(
      fc.property(fc.uniqueArray(pod, { maxLength: 6, selector: (p) => p.uid }), (pods) => {
        // IPs are unique per file here: two pods may share one only with start/end times
        const seen = new Set<string>();
        for (const p of pods) p.ips = p.ips.filter((ip) => !seen.has(ip) && seen.add(ip));
        expect(parsePodsFile(JSON.stringify(pods, null, 1), 'pods.json')).toEqual(pods);
      }),
      { numRuns: 500 },
    );
  });
});

describe('parseYamlWithLines (property)', () => {
  it('reads every JSON document as JSON.parse does (duplicate keys aside)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(0, 1, 2), (value, indent) => {
        const text = JSON.stringify(value, null, indent);
        expect(parseYamlWithLines(text).value).toEqual(JSON.parse(text));
      }),
      { numRuns: 3000 },
    );
  });

  it('fails on broken text with a YamlSyntaxError whose line is inside the text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.json().chain((j) => fc.nat(j.length).map((n) => j.slice(0, n) + j.slice(n + 1)))), (text) => {
        let err: unknown;
        try {
          parseYamlWithLines(text);
        } catch (e) {
          err = e;
        }
        if (err === undefined) return;
        expect(err).toBeInstanceOf(YamlSyntaxError);
        const e = err as YamlSyntaxError;
        expect(e.line).toBeGreaterThanOrEqual(1);
        expect(e.line).toBeLessThanOrEqual(text.split(/\r\n|\r|\n/).length);
        expect(e.message).not.toMatch(/[\n\r]/);
      }),
      { numRuns: 5000 },
    );
  });

  it('keeps a "__proto__" member as JSON.parse does', () => {
    const text = '{"__proto__": {"namespace": "x"}}';
    expect(parseYamlWithLines(text).value).toEqual(JSON.parse(text));
    expect(Object.getPrototypeOf(parseYamlWithLines(text).value)).toBe(Object.prototype);
    expect(outcome('[{"__proto__": {"namespace": "x", "name": "y", "uid": "z"}}]')).toEqual({
      ok: false,
      line: 'pods file pods.json: line 1: pods[0].__proto__: unknown field (expected namespace, name, uid, ips, netns, hostNetwork, start, end)',
    });
  });

  it('shares an anchored node among its aliases: a billion laughs stays small', () => {
    const levels = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]'];
    for (let i = 1; i < 9; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
    const v = parseYamlWithLines(levels.join('\n')).value as Record<string, unknown[]>;
    expect(v.i!.length).toBe(10);
    expect(v.i![0]).toBe(v.h);
  });
});
