/**
 * One sentence per drop in an engineer's words (`explain`), and the knob or action behind
 * it (`hint`), with the values in force right now. Sysctls come through a small cached
 * reader so the hot path reads /proc at most once a second per key.
 */
import { readFileSync } from 'node:fs';
import type { Classification } from './classify.js';
import type { RawDrop } from './decode.js';
import { MARTIAN_FLAG } from '../gen/record.js';
import type { NeighOverflow } from './neigh-pressure.js';
import type { DropRule } from '../host/rules/types.js';
import { innerFlowText, tunnelName } from './overlay.js';
import type { InnerFlow } from './overlay.js';

export type SysctlReader = (key: string) => number | null;

/** Reads /proc/sys/<key with dots as slashes>, cached for `ttlMs`. */
export function cachedSysctl(ttlMs = 1000, read = (p: string) => readFileSync(p, 'utf8'), now = () => Date.now()): SysctlReader {
  const cache = new Map<string, { at: number; value: number | null }>();
  return (key) => {
    const hit = cache.get(key);
    const t = now();
    if (hit && t - hit.at < ttlMs) return hit.value;
    let value: number | null = null;
    try {
      const n = Number.parseInt(read(`/proc/sys/${key.replace(/\./g, '/')}`).trim(), 10);
      value = Number.isFinite(n) ? n : null;
    } catch {
      value = null;
    }
    cache.set(key, { at: t, value });
    return value;
  };
}

export interface NeighDetail {
  table: 'arp_cache' | 'ndisc_cache';
  address: string | null;
  entries: number | null;
  gc_thresh1: number | null;
  gc_thresh2: number | null;
  gc_thresh3: number | null;
  /** neigh_resolution_failed: the table was full just before (src/pipeline/neigh-pressure.ts) */
  overflow?: NeighOverflow;
}

export interface MartianDetail {
  /** net.ipv4.conf.{all,<dev>}.log_martians: would the kernel itself have logged it */
  kernel_logged: boolean | null;
  rp_filter: number | null;
}

export interface Explanation {
  explain: string;
  hint: string;
  neigh?: NeighDetail;
  martian?: MartianDetail;
  conntrack?: { nf_conntrack_max: number | null; evidence: string[] };
}

const v = (n: number | null) => (n === null ? '?' : String(n));

function neighDetail(d: RawDrop, sysctl: SysctlReader): NeighDetail {
  const v6 = d.neigh ? d.neigh.family === 10 : d.l3Proto === 0x86dd;
  const fam = v6 ? 'ipv6' : 'ipv4';
  return {
    table: v6 ? 'ndisc_cache' : 'arp_cache',
    address: d.neigh?.key ?? null,
    entries: d.neigh?.entries ?? null,
    gc_thresh1: sysctl(`net.${fam}.neigh.default.gc_thresh1`),
    gc_thresh2: sysctl(`net.${fam}.neigh.default.gc_thresh2`),
    gc_thresh3: sysctl(`net.${fam}.neigh.default.gc_thresh3`),
  };
}

/**
 * What explain() reads of a drop of this kind besides the classification, the reason and the
 * location: nothing ('none'), only the netns ('netns'), more of the drop ('drop': flow,
 * device, neighbour or martian details), or that and sysctls ('sysctl': values in force when
 * it ran). The stream reuses one explanation for all drops with the same inputs, and rebuilds
 * folded lines from a drop's record unless sysctls were read (src/pipeline/events.ts, src/pipeline/fold.ts);
 * test/explain.test.ts holds explain() to it.
 */
export function explainReads(kind: string): 'none' | 'netns' | 'drop' | 'sysctl' {
  switch (kind) {
    case 'netfilter_rule':
      return 'netns';
    case 'neigh_queue_full':
    case 'neigh_dead':
    case 'martian_source':
    case 'martian_destination':
    case 'rp_filter':
      return 'drop';
    case 'neigh_table_full':
    case 'neigh_resolution_failed':
    case 'conntrack_table_full':
    case 'conntrack_insert_failed':
    case 'conntrack_invalid':
      return 'sysctl';
  }
  return 'none';
}

/** `reason` null: the kernel gives none (before 5.17) */
export function explain(
  c: Classification,
  d: RawDrop,
  reason: string | null,
  sysctl: SysctlReader,
  location = 'the kernel',
  overflow?: NeighOverflow,
): Explanation {
  const dev = d.ifname || 'its device';
  const src = d.src ?? 'the source';
  const dst = d.dst ?? 'the destination';
  switch (c.kind) {
    case 'neigh_table_full': {
      const n = neighDetail(d, sysctl);
      const fam = n.table === 'arp_cache' ? 'ipv4' : 'ipv6';
      return {
        explain:
          `neighbour table ${n.table} full (${v(n.entries)} entries, gc_thresh3=${v(n.gc_thresh3)}): ` +
          `no entry could be created for next hop ${n.address ?? dst}, so the packet was dropped`,
        hint:
          `raise net.${fam}.neigh.default.gc_thresh3 (now ${v(n.gc_thresh3)}) and gc_thresh2 (now ${v(n.gc_thresh2)}), ` +
          'or cut the number of neighbours on this node (ip -s neigh; cat /proc/net/stat/' + n.table + ')',
        neigh: n,
      };
    }
    case 'neigh_resolution_failed': {
      // no neighbour hook names the entry here: the destination is the address being resolved
      // when it is on-link (behind a gateway, the gateway is)
      const n = { ...neighDetail(d, sysctl), address: d.neigh?.key ?? d.dst };
      const asked = n.table === 'arp_cache' ? 'ARP' : 'neighbour solicitation';
      if (overflow) return neighOverflowed(n, overflow, dst, asked);
      return {
        explain: `the next hop for ${dst} did not answer ${asked}: packets waiting for it were dropped`,
        hint: `check that the next hop is up and on-link (ip neigh show dev ${dev}); a table near gc_thresh3 also evicts entries`,
        neigh: n,
      };
    }
    case 'neigh_queue_full':
      return {
        explain: `too many packets were waiting for the next hop of ${dst} to be resolved: the queue overflowed`,
        hint: `net.${d.l3Proto === 0x86dd ? 'ipv6' : 'ipv4'}.neigh.${dev}.unres_qlen_bytes bounds that queue; first find why resolution is slow`,
      };
    case 'neigh_dead':
      return {
        explain: `the neighbour entry for ${dst} was being destroyed while packets used it`,
        hint: 'usually an interface going down or a flushed neighbour table',
      };
    case 'conntrack_table_full': {
      const max = sysctl('net.netfilter.nf_conntrack_max');
      return {
        explain: `conntrack table full (nf_conntrack_max=${v(max)}): the kernel could not track this new connection and dropped it`,
        hint: `raise net.netfilter.nf_conntrack_max (now ${v(max)}) or shorten conntrack timeouts; conntrack -C and /proc/net/stat/nf_conntrack show the count and drops`,
        conntrack: { nf_conntrack_max: max, evidence: c.evidence ?? [] },
      };
    }
    case 'conntrack_insert_failed':
      return {
        explain:
          'two packets of a new connection raced to insert the same conntrack entry and this one lost (clash on confirm): ' +
          'the race behind "DNS lookups take 5 s"',
        hint: "for DNS: options single-request-reopen (glibc) or use-vc in resolv.conf, or NodeLocal DNSCache; /proc/net/stat/nf_conntrack counts insert_failed",
        conntrack: { nf_conntrack_max: sysctl('net.netfilter.nf_conntrack_max'), evidence: c.evidence ?? [] },
      };
    case 'conntrack_invalid':
      return {
        explain: 'conntrack judged the packet INVALID (out of window, bad flags, no matching state) and it was dropped',
        hint:
          `net.netfilter.nf_conntrack_tcp_be_liberal=1 (now ${v(sysctl('net.netfilter.nf_conntrack_tcp_be_liberal'))}) tolerates out-of-window TCP; ` +
          'nf_conntrack_log_invalid logs them; look for a ct state invalid drop rule',
        conntrack: { nf_conntrack_max: sysctl('net.netfilter.nf_conntrack_max'), evidence: c.evidence ?? [] },
      };
    case 'netfilter_rule':
      return {
        explain: `a firewall rule (iptables/nftables) returned DROP for this packet (freed in ${location})`,
        hint: `find the rule in netns ${d.netns}: nft list ruleset, or iptables-save -c (its packet counters show which one matched)`,
      };
    case 'martian_source':
    case 'martian_destination':
    case 'rp_filter': {
      const m = martianDetail(d);
      const logged =
        m.kernel_logged === null
          ? ''
          : m.kernel_logged
            ? ' The kernel also logs it (log_martians=1, rate-limited).'
            : ' The kernel did not log it (log_martians=0).';
      if (c.kind === 'rp_filter') {
        return {
          explain: `reverse-path filter (rp_filter=${v(m.rp_filter)}) dropped a packet from ${src} on ${dev}: the route back to ${src} leaves by another interface.${logged}`,
          hint: `fix the asymmetric route, or set net.ipv4.conf.${dev}.rp_filter=2 (loose); net.ipv4.conf.all.log_martians=1 makes the kernel log these`,
          martian: m,
        };
      }
      const which = c.kind === 'martian_source' ? `source ${src}` : `destination ${dst}`;
      return {
        explain: `martian packet on ${dev}: ${which} cannot be valid there (${reason ?? `freed in ${location}`}).${logged}`,
        hint:
          c.kind === 'martian_source'
            ? `find who sends from ${src} (spoofing, a misconfigured NAT or a bridge loop); net.ipv4.conf.all.log_martians=1 makes the kernel log these`
            : `find who sends to ${dst}; net.ipv4.conf.all.log_martians=1 makes the kernel log these`,
        martian: m,
      };
    }
  }
  if (reason === null) {
    return {
      explain: `the kernel dropped the packet in ${location}${c.kind === 'not_specified' ? '' : ` (${c.kind.replaceAll('_', ' ')}, going by the place)`}; this kernel gives no drop reason`,
      hint: `the source of ${location} in this kernel says why; Linux 5.17 and newer name the reason`,
    };
  }
  return {
    explain: `the kernel dropped the packet in ${location} with reason ${reason}`,
    hint: `what ${reason} means: the comment on SKB_DROP_REASON_${reason} in include/net/dropreason-core.h of this kernel's source`,
  };
}

function martianDetail(d: RawDrop): MartianDetail {
  if (!(d.martianConf & MARTIAN_FLAG.KNOWN)) return { kernel_logged: null, rp_filter: null };
  return { kernel_logged: (d.martianConf & (MARTIAN_FLAG.LOG_ALL | MARTIAN_FLAG.LOG_DEV)) !== 0, rp_filter: d.rpFilter };
}

/** neigh_resolution_failed while the table was full: the overflow is why, and its knob is the fix. */
function neighOverflowed(n: NeighDetail, o: NeighOverflow, dst: string, asked: string): Explanation {
  const fam = n.table === 'arp_cache' ? 'ipv4' : 'ipv6';
  const when = o.seconds_before === 0 ? 'just before' : `${o.seconds_before} s before`;
  const seen = o.source === 'drops' ? 'neigh_table_full drops in this netns' : 'host sample';
  return {
    explain:
      `resolution of ${n.address ?? dst} failed (no answer to ${asked}) and the packets waiting for it were dropped; ` +
      `the neighbour table ${n.table} was full ${when} (${seen}, gc_thresh3=${v(n.gc_thresh3)}): the overflow is why`,
    hint:
      `raise net.${fam}.neigh.default.gc_thresh3 (now ${v(n.gc_thresh3)}) and gc_thresh2 (now ${v(n.gc_thresh2)}), ` +
      `or cut the number of neighbours on this node (ip -s neigh; cat /proc/net/stat/${n.table})`,
    neigh: { ...n, overflow: o },
  };
}

/** The explain line of a rule drop whose rule was found (src/host/rules/stage.ts). */
export function ruleSentence(r: DropRule): string {
  const where = r.backend === 'iptables-legacy' ? `iptables (legacy) ${r.family} ${r.table} ${r.chain}` : `${r.family} ${r.table} ${r.chain}`;
  const text = r.text !== null ? `: '${r.text}'` : r.handle !== null ? ` (handle ${r.handle})` : '';
  const comment = r.comment !== null ? ` (comment: ${r.comment})` : '';
  const sure = r.certainty === 'exact' ? '' : `; ${r.certainty}: ${r.candidates} rule${r.candidates === 1 ? '' : 's'} could have matched`;
  return `dropped by rule #${r.position} in ${where}${text}${comment}${sure}`;
}

/** Where to look at that rule, in that netns. */
export function ruleHint(r: DropRule, netns: number): string {
  const look =
    r.backend === 'iptables-legacy'
      ? `${r.family === 'ip6' ? 'ip6tables' : 'iptables'}-legacy -t ${r.table} -L ${r.chain} -v -n --line-numbers`
      : `nft -a list chain ${r.family} ${r.table} ${r.chain}${r.handle !== null ? ` (handle ${r.handle})` : ''}`;
  return `in netns ${netns}: ${look}; its counters show how often it matched`;
}

/**
 * A tunnelled drop's sentence: the pods' flow inside the nodes' datagram, then why.
 * `tcp 198.19.42.1:5555 → 198.19.42.2:7777 inside VXLAN 42 from node 198.18.0.1 to 198.18.0.2 dropped: …`
 */
export function explainTunnel(text: string, inner: InnerFlow, outerSrc: string | null, outerDst: string | null): string {
  return `${innerFlowText(inner)} inside ${tunnelName(inner)} from node ${outerSrc ?? '?'} to ${outerDst ?? '?'} dropped: ${text}`;
}
