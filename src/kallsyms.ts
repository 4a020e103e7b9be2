/**
 * Kernel text addresses → function names, from /proc/kallsyms. Loaded once; each distinct
 * address is resolved once (drops come from a handful of call sites).
 */
import { readFileSync } from 'node:fs';

const SUFFIX = /(\.(constprop|isra|part|cold|llvm|lto_priv)(\.\d+)?)+$/;

export class Symbolizer {
  private addrs: BigUint64Array = new BigUint64Array(0);
  private names: string[] = [];
  private readonly cache = new Map<bigint, string>();

  constructor(text: string) {
    const rows: Array<[bigint, string]> = [];
    for (const line of text.split('\n')) {
      // "ffffffff81000000 T _stext" or "ffffffffc0a01000 t nft_do_chain\t[nf_tables]"
      const sp1 = line.indexOf(' ');
      if (sp1 !== 16 || line.length < 20) continue;
      const type = line[sp1 + 1];
      if (type !== 't' && type !== 'T') continue;
      let name = line.slice(sp1 + 3);
      const tab = name.indexOf('\t');
      if (tab >= 0) name = name.slice(0, tab);
      // compiler clones keep their function's name: ip_rcv_finish_core.constprop.0
      name = name.replace(SUFFIX, '');
      rows.push([BigInt('0x' + line.slice(0, 16)), name]);
    }
    rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    this.addrs = new BigUint64Array(rows.length);
    this.names = new Array(rows.length);
    rows.forEach(([a, n], i) => {
      this.addrs[i] = a;
      this.names[i] = n;
    });
  }

  static fromProc(path = '/proc/kallsyms'): Symbolizer {
    return new Symbolizer(readFileSync(path, 'utf8'));
  }

  /** Whether addresses are visible (kptr_restrict hides them as zeros). */
  get usable(): boolean {
    return this.addrs.length > 0 && this.addrs[this.addrs.length - 1] !== 0n;
  }

  lookup(addr: bigint): string {
    const hit = this.cache.get(addr);
    if (hit !== undefined) return hit;
    // kallsyms shows zeros without CAP_SYSLOG (kptr_restrict): never guess a name then
    if (!this.usable) return `0x${addr.toString(16)}`;
    let lo = 0;
    let hi = this.addrs.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.addrs[mid]! <= addr) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    const name = found >= 0 && addr !== 0n ? this.names[found]! : `0x${addr.toString(16)}`;
    this.cache.set(addr, name);
    return name;
  }
}
