/** The filter language as the command line teaches it and reports a bad one. */
import { DroptraceError } from '../../errors.js';
import { compileFilter } from './match.js';
import { FilterError } from './parse.js';
import type { Filter } from './match.js';

export const FILTER_HELP = `
Filter (--filter, and / in droptrace top): terms joined by "and" (or a space), "or", "not" (or
!), with parentheses; "and" binds tighter than "or".
  field:value   contains, case-insensitive         pod:web  reason:NETFILTER  ip:198.18.
  field=value   equals (* is a wildcard)           kind=netfilter_rule  pod=default/web-*
  field!=value  not equals                         family!=neigh
  word          any of pod, kind, family, reason, ip, netns, dns contains it
Fields: pod (ns/name or name), ns, kind, family, reason, ip (src or dst), src, dst, port
(sport or dport), sport, dport, proto, dns (a dropped query's name), netns (inode), ifname.
ip/src/dst take an address or a CIDR (ip=198.18.0.0/15, dst=fd99::2); ports a number or a range
(port=30000-32767). Quote values with spaces: pod="a b".
  --filter 'kind=netfilter_rule and port=5301'
  --filter 'ns=payments and not (reason=NO_SOCKET or family=neigh)'
  --filter 'dst=10.96.0.0/12 or dns:svc.cluster.local'
Drop lines the filter leaves out are counted in the stats lines' "filtered"; the kernel's
counts and the --metrics counters still cover every drop.`;

/** A --filter value, parsed and checked once; a bad one is one line and exit 2. */
export function filterOption(text: string | undefined): Filter | null {
  if (text === undefined) return null;
  try {
    return compileFilter(text);
  } catch (e) {
    if (e instanceof FilterError) throw new DroptraceError('E_FILTER', 'usage', `bad --filter: ${e.message}`);
    throw e;
  }
}
