/** The command line's side of --filter (no root): a bad filter is one line, a caret and exit 2; --help teaches it. */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI } from '../../helpers/stream.js';

const run = (args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, DROPTRACE_DEBUG: '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('--filter on the command line', () => {
  it('rejects a bad filter before anything starts: one line pointing at the token, exit 2', () => {
    // exit 2 comes before the privileges check: the same as root or not
    expect(run(['stream', '--filter', 'kind=netfilter_rule and podd=web'])).toEqual({
      code: 2,
      out: '',
      err: 'droptrace: bad --filter: unknown field "podd" (fields: pod, ns, kind, family, reason, ip, src, dst, port, sport, dport, proto, dns, netns, ifname) at column 25: kind=netfilter_rule and ^podd=web\n',
    });
    expect(run(['stream', '--filter', '(port=5301 or kind=x'])).toEqual({
      code: 2,
      out: '',
      err: 'droptrace: bad --filter: expected ")" for the "(" at column 1, found the end at column 21: (port=5301 or kind=x^\n',
    });
    expect(run(['top', '--filter', 'dst=198.18.0.0/99'])).toEqual({
      code: 2,
      out: '',
      err: 'droptrace: bad --filter: "198.18.0.0/99" is not an IP address or CIDR (198.18.0.0/15, fd99::1) at column 5: dst=^198.18.0.0/99\n',
    });
  });

  it('teaches the language in stream --help', () => {
    const r = run(['stream', '--help']);
    expect(r.code).toBe(0);
    for (const s of ['--filter <expr>', "--filter 'kind=netfilter_rule and port=5301'", 'field=value', 'ip=198.18.0.0/15', '"filtered"']) expect(r.out).toContain(s);
  });
});
