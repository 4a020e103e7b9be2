/**
 * `droptrace stream --filter`: drop lines the filter does not match are not written, and their
 * drops are counted, so nothing leaves the sum unaccounted for: the stats line's `filtered` is
 * the drops (sum of `count`, folded lines too) the filter excluded, and on the final line
 * `sum of count over drop lines + lost.stdout + unfolded + filtered == kernel.drops`.
 * It sits between the pipeline and the NDJSON sink, after enrichment, so pod and DNS are known.
 */
import type { DropEvent, StreamLine } from '../events.js';
import type { Filter, Subject } from './match.js';

/** What the filter sees of a drop line. The stream knows no netns names: netns= is the inode. */
export function subjectOfDrop(ev: DropEvent): Subject {
  const f = ev.flow;
  return {
    pod: ev.pod ? `${ev.pod.namespace}/${ev.pod.name}` : null,
    namespace: ev.pod?.namespace ?? null,
    kind: ev.kind,
    family: ev.family,
    reason: ev.reason ?? '', // none on kernels before 5.17
    proto: f?.proto ?? null,
    src: f?.src ?? null,
    dst: f?.dst ?? null,
    sport: f?.sport ?? null,
    dport: f?.dport ?? null,
    netns: ev.netns,
    netnsName: undefined,
    names: ev.dns?.name ? [ev.dns.name] : [],
    ifnames: ev.ifname ? [ev.ifname] : [],
  };
}

export class FilterGate {
  /** drops (sum of `count`) the filter excluded */
  excluded = 0;

  constructor(
    private readonly filter: Filter,
    private readonly next: (line: StreamLine) => void,
  ) {}

  readonly emit = (line: StreamLine): void => {
    const matches = this.filter.matches;
    if (matches === null) return this.next(line);
    switch (line.type) {
      case 'drop':
        if (!matches(subjectOfDrop(line))) {
          this.excluded += line.count;
          return;
        }
        break;
      case 'stats':
        line = { ...line, filtered: this.excluded };
        break;
      case 'start':
        line = { ...line, filter: { ...line.filter, expr: this.filter.text } };
        break;
    }
    this.next(line);
  };
}
