/**
 * Drop-reason names, from the running kernel's BTF (`enum skb_drop_reason`). The numbers
 * differ between kernels (about 70 values on 6.1, 130 on 6.18): never a table in the code.
 */
export type EnumReader = (name: string) => Array<[string, number]> | null;

export class ReasonNames {
  private readonly names: Map<number, string>;
  private readonly byName: Map<string, number>;

  constructor(entries: Array<[string, number]>) {
    this.names = new Map();
    this.byName = new Map();
    for (const [full, value] of entries) {
      const name = shortName(full);
      // Aliases (e.g. SKB_DROP_REASON_MAX) never shadow the first name of a value.
      if (!this.names.has(value)) this.names.set(value, name);
      this.byName.set(name, value);
    }
  }

  static fromKernel(readEnum: EnumReader): ReasonNames | null {
    const entries = readEnum('skb_drop_reason');
    return entries ? new ReasonNames(entries) : null;
  }

  /**
   * A kernel without drop reasons (before 5.17): drops carry their place instead
   * (src/pipeline/classify-location.ts), and the per-reason count has one entry, NO_REASON.
   */
  static none(): ReasonNames {
    const r = new ReasonNames([]);
    r.present = false;
    return r;
  }

  /** false: the kernel has no enum skb_drop_reason */
  present = true;

  /** The tracepoint's own spelling: `NETFILTER_DROP`; unknown numbers say so. */
  name(value: number): string {
    if (!this.present) return 'NO_REASON';
    return this.names.get(value) ?? `UNKNOWN_${value}`;
  }

  value(name: string): number | undefined {
    return this.byName.get(name);
  }

  get size(): number {
    return this.names.size;
  }

  entries(): IterableIterator<[number, string]> {
    return this.names.entries();
  }
}

export function shortName(full: string): string {
  if (full.startsWith('SKB_DROP_REASON_')) return full.slice('SKB_DROP_REASON_'.length);
  if (full.startsWith('SKB_')) return full.slice('SKB_'.length);
  return full;
}
