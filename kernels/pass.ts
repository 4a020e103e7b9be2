/**
 * One pass of the exercise: one `droptrace stream`, the given scenarios one after another,
 * each cross-checked with the kernel's own trace of the same packets.
 */
import { drops, startStream, sum } from './droptrace.js';
import type { Line } from './droptrace.js';
import { makePair } from './scenarios.js';
import type { Expect, Scenario } from './scenarios.js';
import type { KernelTrace } from './trace.js';
import { firstErr, log, readOr, sleep, SLOW } from './util.js';
import type { NsPair } from '../src/lab/pair.js';

export interface ScenarioResult {
  name: string;
  what: string;
  expect: Expect;
  exact: number | null;
  ok: boolean;
  drops?: Array<{ family: string; kind: string; reason: string; location: string; certainty: string; count: number }>;
  sample?: Line | null;
  otherDrops?: Record<string, number>;
  kernelTrace?: Record<string, number>;
  kernelTraceOverrun?: number;
  notes?: string[];
  problems?: string[];
  ms?: number;
}

export interface Pass {
  label: string;
  args: string[];
  env: Record<string, string>;
  start: Line | null;
  scenarios: ScenarioResult[];
  stats: Line | null;
  exit: number | string | null;
  stderr: string;
  setupMs?: number;
  modules?: string[];
  startMs?: number;
  error?: string;
  ms?: number;
}

/** the networking modules loaded now (a probe on a module's function needs the module) */
function loadedModules(): string[] {
  const mods = readOr('/proc/modules', '').split('\n').map((l) => l.split(' ')[0] ?? '');
  return mods.filter((m) => /^(nf_|nft_|x_tables|xt_|ip_tables|iptable_|veth)/.test(m)).sort();
}

/** Runs one scenario against a started stream; what it saw and what went wrong. */
async function runScenario(s: ReturnType<typeof startStream>, sc: Scenario, p: NsPair, setupError: string | null, trace: KernelTrace): Promise<{ r: ScenarioResult; after: unknown }> {
  const r: ScenarioResult = { name: sc.name, what: sc.what, expect: sc.expect, exact: sc.exact ?? null, ok: false };
  let after: unknown;
  try {
    if (setupError) throw new Error(setupError);
    trace.clear();
    const from = s.lines.length;
    after = await sc.act(p);
    const want = sc.exact ?? 1;
    await s.until((ls) => sum(drops(ls).filter((d) => sc.mine(d, p))) >= want, 15_000 * SLOW);
    // a moment for late duplicates (a count must be exact, not at least)
    await sleep(sc.exact ? 300 * SLOW : 1000 * SLOW);
    const mine = drops(s.lines).filter((d) => sc.mine(d, p));
    const seen = new Map<string, number>();
    for (const d of mine) {
      const k = `${d.family}|${d.kind}|${d.reason}|${d.location}|${d.certainty}`;
      seen.set(k, (seen.get(k) ?? 0) + (d.count ?? 1));
    }
    const found = [...seen].map(([k, count]) => {
      const [family = '', kind = '', reason = '', location = '', certainty = ''] = k.split('|');
      return { family, kind, reason, location, certainty, count };
    });
    r.drops = found;
    r.sample = mine[0] ?? null;
    // everything else droptrace reported meanwhile, for the record (kernel noise differs)
    const window = new Map<string, number>();
    for (const d of drops(s.lines.slice(from))) {
      if (sc.mine(d, p)) continue;
      const where = d.netns === p.netnsA ? 'sender' : d.netns === p.netnsB ? 'receiver' : 'elsewhere';
      const k = `${d.reason}@${d.location} (${where})`;
      window.set(k, (window.get(k) ?? 0) + (d.count ?? 1));
    }
    r.otherDrops = Object.fromEntries(window);
    // the kernel's own words for the same packets
    const { events: kt, overrun } = trace.read();
    const kernelTrace: Record<string, number> = {};
    r.kernelTrace = kernelTrace;
    if (overrun) r.kernelTraceOverrun = overrun;
    for (const e of kt) {
      const k = `${e.reason}@${e.fn ?? '?'}`;
      kernelTrace[k] = (kernelTrace[k] ?? 0) + 1;
    }
    const problems: string[] = [];
    const total = sum(mine);
    if (total === 0) problems.push('no drop reported');
    if (sc.exact && total !== sc.exact) problems.push(`${total} drops reported, expected exactly ${sc.exact}`);
    for (const d of found) {
      // a kernel without drop reasons says none (null), and its trace has none to compare with
      const noReason = d.reason === 'null';
      for (const f of ['family', 'kind', 'reason'] as const) {
        if (f === 'reason' && noReason) continue;
        if (sc.expect[f] && d[f] !== sc.expect[f]) problems.push(`${f} ${d[f]}, expected ${sc.expect[f]}`);
      }
      if (noReason) continue;
      // every reason name droptrace printed, the kernel printed for at least as many drops
      const k = kt.filter((e) => e.reason === d.reason && (e.fn === null || e.fn === d.location)).length;
      if (trace.dir && k < d.count) {
        const msg = `kernel trace shows ${k} × ${d.reason} at ${d.location}, droptrace ${d.count}`;
        // a ring the rest of the machine overran proves nothing either way
        if (overrun) (r.notes ??= []).push(`${msg} (inconclusive: the trace ring lost ${overrun} events)`);
        else problems.push(msg);
      }
    }
    r.problems = [...new Set(problems)];
    r.ok = r.problems.length === 0;
  } catch (e) {
    r.problems = [`error: ${firstErr(e)}`];
  }
  return { r, after };
}

export async function runStreamPass(label: string, streamArgs: string[], scenarios: Scenario[], env: Record<string, string>, trace: KernelTrace): Promise<Pass> {
  const pass: Pass = { label, args: streamArgs, env, start: null, scenarios: [], stats: null, exit: null, stderr: '' };
  const tp = Date.now();
  // each scenario in its own pair of namespaces, set up before the stream starts
  const ready: Array<[Scenario, NsPair, string | null]> = [];
  for (const sc of scenarios) {
    const p = makePair();
    try {
      sc.setup?.(p);
      ready.push([sc, p, null]);
    } catch (e) {
      ready.push([sc, p, `setup failed: ${firstErr(e)}`]);
    }
  }
  pass.setupMs = Date.now() - tp;
  pass.modules = loadedModules();
  const s = startStream(streamArgs, env);
  const t = Date.now();
  const started = await s.until((ls) => ls.some((l) => l.type === 'start'), 120_000 * SLOW);
  pass.startMs = Date.now() - t;
  if (!started) {
    await s.stop();
    pass.stderr = s.err.trim();
    pass.error = `stream did not start: ${s.err.trim().split('\n').slice(-3).join(' | ')}`;
    return pass;
  }
  pass.start = s.lines.find((l) => l.type === 'start') ?? null;
  for (const [sc, p, setupError] of ready) {
    const ts = Date.now();
    const { r, after } = await runScenario(s, sc, p, setupError, trace);
    try {
      if (typeof after === 'function') after();
    } catch {
      // the scenario's own cleanup: the namespaces go anyway
    }
    r.ms = Date.now() - ts;
    log(`${label} ${sc.name}: ${r.ok ? 'ok' : (r.problems ?? []).join('; ')}`);
    pass.scenarios.push(r);
  }
  const ex = await s.stop();
  pass.exit = ex.code ?? ex.signal;
  pass.stats = s.lines.filter((l) => l.type === 'stats').at(-1) ?? null;
  pass.ms = Date.now() - tp;
  pass.stderr = s.err.trim();
  return pass;
}
