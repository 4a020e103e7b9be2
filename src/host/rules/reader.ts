/**
 * Takes a snapshot of one netns's DROP/REJECT rules: `nft -j list ruleset` (iptables-nft rules
 * are nf_tables rules, so they are there too, with counters), the rule texts of `nft -a list
 * ruleset` and the comments of `iptables-nft-save -c` only for rules not seen before (texts are
 * kept per rule: a rule's handle names one text for its life), and `iptables-legacy-save -c`
 * where the netns has legacy tables. Commands run as child processes (never synchronously),
 * entered into the netns with nsenter through one of its processes or its /run/netns name.
 */
import type { HostIo } from '../io.js';
import { enterArgs, readNetnsProcNet, scanNetns } from '../netns.js';
import type { NetnsHandle } from '../netns.js';
import { legacyRules, mergeNftSave, parseIptablesSave, parseNftJson, parseNftText } from './parse.js';
import type { RuleInfo, RulesetSnapshot } from './types.js';

export interface RuleReaderOptions {
  /** DROP/REJECT rules kept per netns (default 4096); the rest counted in the snapshot's overCap */
  maxRules?: number;
  monotonicMs?: () => number;
}

export class RuleReader {
  private readonly maxRules: number;
  private readonly texts = new Map<number, Map<string, { text: string | null; comment: string | null }>>();
  private handles = new Map<number, NetnsHandle>();
  private scanning: Promise<void> | null = null;
  private lastScan = -Infinity;
  private readonly now: () => number;
  /** command runs so far (each one child process) */
  spawns = 0;

  constructor(
    private readonly io: HostIo,
    o: RuleReaderOptions = {},
  ) {
    this.maxRules = o.maxRules ?? 4096;
    this.now = o.monotonicMs ?? (() => performance.now());
  }

  /** Forgets what it kept of a netns no longer tracked. */
  forget(netns: number): void {
    this.texts.delete(netns);
    this.handles.delete(netns);
  }

  async read(netns: number): Promise<RulesetSnapshot> {
    const h = await this.handle(netns);
    if (h === null) throw new Error(`netns ${netns} cannot be entered (no process and no name)`);
    const run = async (cmd: string, args: string[]): Promise<string> => {
      const enter = enterArgs(h);
      this.spawns++;
      const r = enter === null ? await this.io.exec(cmd, args) : await this.io.exec('nsenter', [...enter, cmd, ...args]);
      if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.code === null ? 'timed out' : (r.stderr.trim().split('\n')[0] ?? `exit ${r.code}`)}`);
      return r.stdout;
    };
    const snap = parseNftJson(await run('nft', ['-j', 'list', 'ruleset']), this.maxRules);
    let kept = this.texts.get(netns);
    if (kept === undefined) this.texts.set(netns, (kept = new Map()));
    const fresh = snap.rules.filter((r) => !kept.has(r.id));
    if (fresh.length > 0) {
      const text = parseNftText(await run('nft', ['-a', 'list', 'ruleset']));
      for (const r of fresh) r.text = text.get(r.id) ?? null;
      for (const family of ['ip', 'ip6'] as const) {
        if (!fresh.some((r) => r.xt && r.family === family)) continue;
        const save = await run(family === 'ip' ? 'iptables-nft-save' : 'ip6tables-nft-save', ['-c']).catch(() => null);
        if (save !== null) mergeNftSave(fresh, parseIptablesSave(save), family);
      }
      // a netns whose rules churn forgets the old texts instead of growing
      if (kept.size + fresh.length > 2 * this.maxRules) kept.clear();
      for (const r of fresh) kept.set(r.id, { text: r.text, comment: r.comment });
    }
    for (const r of snap.rules) {
      const k = kept.get(r.id);
      if (k !== undefined) [r.text, r.comment] = [k.text, k.comment];
    }
    const rules: RuleInfo[] = snap.rules;
    let overCap = snap.overCap;
    for (const [family, names, save] of [
      ['ip', 'ip_tables_names', 'iptables-legacy-save'],
      ['ip6', 'ip6_tables_names', 'ip6tables-legacy-save'],
    ] as const) {
      // legacy tables exist in a netns only once something loaded them there
      const loaded = await readNetnsProcNet(this.io, h, names);
      if (loaded === null || loaded.trim() === '') continue;
      const legacy = legacyRules(parseIptablesSave(await run(save, ['-c'])), family, Math.max(0, this.maxRules - rules.length));
      rules.push(...legacy.rules);
      overCap += legacy.overCap;
    }
    return { rules, overCap };
  }

  /** The netns's handle: the one known while its process still lives in it, else a new /proc scan (at most one a second). */
  private async handle(netns: number): Promise<NetnsHandle | null> {
    const known = this.handles.get(netns);
    if (known !== undefined && (await this.intact(known))) return known;
    if (this.scanning === null && this.now() - this.lastScan >= 1000) {
      this.lastScan = this.now();
      this.scanning = scanNetns(this.io)
        .then((scan) => {
          this.handles = new Map(scan.netns.map((x) => [x.inode, x]));
        })
        .finally(() => (this.scanning = null));
    }
    await this.scanning?.catch(() => undefined);
    return this.handles.get(netns) ?? null;
  }

  private async intact(h: NetnsHandle): Promise<boolean> {
    if (h.self) return true;
    const pid = h.pids[0];
    if (pid !== undefined) return (await this.io.readlink(`/proc/${pid}/ns/net`).catch(() => '')) === `net:[${h.inode}]`;
    return h.path !== null && (await this.io.nsInode(h.path).catch(() => null)) === h.inode;
  }
}
