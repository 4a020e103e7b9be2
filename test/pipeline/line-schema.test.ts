/**
 * The published schema against real lines: the drop lines our pipeline makes from the golden
 * records (pinned byte for byte by events.test.ts) and a real recorded stream (all four types).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lineProblem } from '../../src/pipeline/line-schema.js';
import type { StreamLine } from '../../src/pipeline/events.js';

const lines = (url: URL) =>
  readFileSync(url, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{"type"'))
    .map((l) => JSON.parse(l) as StreamLine);

describe('schema/ndjson.schema.json', () => {
  it('accepts every drop line of the golden records', () => {
    const got = lines(new URL('../fixtures/golden-6.18.lines.ndjson', import.meta.url));
    expect(got.length).toBe(31);
    expect(got.map(lineProblem).filter((p) => p !== null)).toEqual([]);
  });

  it('accepts every line of a recorded stream, of each type', () => {
    const got = lines(new URL('../tui/fixtures/drops.ndjson', import.meta.url));
    expect(new Set(got.map((l) => l.type))).toEqual(new Set(['start', 'drop', 'stats', 'counters']));
    expect(got.map((l) => [l.type, lineProblem(l)]).filter(([, p]) => p !== null)).toEqual([]);
  });

  it('says what is wrong with a line in one short phrase', () => {
    const drop = lines(new URL('../fixtures/golden-6.18.lines.ndjson', import.meta.url))[0]!;
    expect(lineProblem({ ...drop, flow: { proto: 'udp', src: 'a', dst: 'b', sport: 'x' } } as unknown as StreamLine)).toBe('"flow.sport" must be integer');
    expect(lineProblem({ type: 'stats' } as unknown as StreamLine)).toBe('missing "time"');
  });
});
