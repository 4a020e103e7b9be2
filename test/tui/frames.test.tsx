/**
 * Frames of the real App (ink-testing-library) from the recorded stream, at 80x24 unless a test
 * is about size: what the on-call engineer sees after each key.
 */
import { render } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import type { CountersLine, StreamLine } from '../../src/pipeline/events.js';
import { App } from '../../src/tui/components/App.js';
import { TuiStore } from '../../src/tui/store.js';
import { themeFrom } from '../../src/tui/theme.js';
import { KEY, loadedStore, renderStore, settle, theme } from './helpers.js';

let unmount: (() => void) | null = null;
afterEach(() => {
  unmount?.();
  unmount = null;
});

async function open(store: TuiStore, columns = 80, rows = 24) {
  const r = await renderStore(store, columns, rows);
  unmount = r.unmount;
  return r;
}

const lines = (frame: string) => frame.split('\n');
/** The rows of the group table: after its column names, up to the next rule or blank line. */
function groupRows(frame: string): string[] {
  const ls = lines(frame);
  const at = ls.findIndex((l) => /^[─-] drops by/.test(l));
  const out: string[] = [];
  for (const l of ls.slice(at + 2)) {
    if (l.trim() === '' || /^[─-] /.test(l)) break;
    out.push(l);
  }
  return out;
}
const line = (frame: string, start: string) => lines(frame).find((l) => l.startsWith(start));

function expectFits(frame: string, columns: number, rows: number) {
  const ls = lines(frame);
  expect(ls.length).toBe(rows - 1);
  expect(ls.filter((l) => l.length > columns)).toEqual([]);
}

describe('the first screen (80x24, --replay --speed 0)', () => {
  it('shows header, tables, drops by kind with sparklines, the top group detail without a key, and the keys', async () => {
    const r = await open(loadedStore());
    expect(r.frame()).toMatchInlineSnapshot(`
      "droptrace  END OF RECORDING   node vm  kernel 6.18.44-fc-v669  up 8s
      42.2 drops/s  lost 0  total 281  kernel exact 281  only netns 4026532528
      probes ✓ kfree_skb ✓ neigh_create ✗ neigh_alloc ✗ ct_alloc ✗ martian (? why)
      ─ kernel tables at 09:52:41 UTC ────────────────────────────────────────────────
        arp_cache ipv4             10/1024   1% ░░░░░░░░░░  of gc_thresh3, gc_thresh1…
        ndisc_cache ipv6           23/1024   2% ░░░░░░░░░░  of gc_thresh3, gc_thresh1…
        … 3 more (a taller terminal shows them)
      ─ drops by kind · sort rate ────────────────────────────────────────────────────
       KIND             TOTAL  RATE/s LAST 60s                       FIRST    LAST
      ›netfilter_rule     264    40.8                           ▃█▂  09:52:34 09:52:38
       martian_source       3     0.6                             █  09:52:39 09:52:39
       not_specified       10     0.4                          █▃▂▂  09:52:33 09:52:38
       no_socket            4     0.4                          ▄▄ █  09:52:33 09:52:39
      ─ detail: netfilter_rule · 264 drops · 40.8/s · first 09:52:34 · last 09:52:38…
      what    a firewall rule (iptables/nftables) returned DROP for this packet at
              netfilter
      do      find the rule in netns 4026532528: nft list ruleset, or iptables-save -c
              (its packet counters show which one matched)
      pods    shop/checkout-7f9c ×220 · payments/api-5d8b ×44
      flows   udp 198.18.210.1:41000 → 198.18.210.2:5301 ×220 at 09:52:38
              udp 198.18.211.1:41001 → 198.18.210.2:5301 ×44 at 09:52:38
      kernel  reason NETFILTER_DROP ×264 (kernel 264)  at nft_do_chain ×264  dev dtub…
      ↑↓ select  ⏎ close  g group  s sort  / filter  p pause  c clear  q quit  ? help"
    `);
    expectFits(r.frame(), 80, 24);
  });
});

describe('grouping', () => {
  it('g switches kind → pod → flow → reason', async () => {
    const r = await open(loadedStore());
    await r.press('g');
    expect(line(r.frame(), '─ drops by')).toMatch(/^─ drops by pod · sort rate · pods from file \(2 pods\) ─+$/);
    expect(groupRows(r.frame())).toEqual([
      '›shop/checkout-7f9c     222    34.2                       ▁█▅▁ 09:52:33 09:52:39',
      ' payments/api-5d8b       46     7.0                       ▁█▅▁ 09:52:34 09:52:39',
      ' netns 4026532528        13     1.0                       █ ▂▃ 09:52:33 09:52:39',
    ]);
    await r.press('g');
    expect(groupRows(r.frame()).slice(0, 4)).toEqual([
      '›udp 198.18.210.1 → 198.18.210.2:5301     220    34.0        █ 09:52:34 09:52:38',
      ' udp 198.18.211.1 → 198.18.210.2:5301      44     6.8        █ 09:52:34 09:52:38',
      ' udp 127.0.0.9 → 198.18.211.2:9999          3     0.6        █ 09:52:39 09:52:39',
      ' icmpv6 fe80::4041:42ff:fed5:53b1 →…        2     0.2       ██ 09:52:33 09:52:37',
    ]);
    await r.press('g');
    expect(groupRows(r.frame()).map((l) => l.slice(0, 24).trimEnd())).toEqual(['›NETFILTER_DROP     264', ' IP_LOCALNET          3', ' NOT_SPECIFIED       10', ' NO_SOCKET            4']);
    await r.press('g');
    expect(line(r.frame(), '─ drops by')).toMatch(/^─ drops by kind /);
  });
});

describe('sorting', () => {
  it('s cycles rate → total → last seen → first seen → name, and the title says which', async () => {
    const r = await open(loadedStore());
    const labels = () => groupRows(r.frame()).map((l) => l.slice(1).split(' ')[0]);
    expect(labels()).toEqual(['netfilter_rule', 'martian_source', 'not_specified', 'no_socket']);
    await r.press('s');
    expect(line(r.frame(), '─ drops by')).toMatch(/^─ drops by kind · sort total ─+$/);
    expect(labels()).toEqual(['netfilter_rule', 'not_specified', 'no_socket', 'martian_source']);
    await r.press('s');
    expect(line(r.frame(), '─ drops by')).toMatch(/sort last seen/);
    expect(labels()).toEqual(['martian_source', 'no_socket', 'netfilter_rule', 'not_specified']);
    await r.press('s', 's');
    expect(line(r.frame(), '─ drops by')).toMatch(/sort name/);
    expect(labels()).toEqual(['martian_source', 'netfilter_rule', 'no_socket', 'not_specified']);
  });
});

describe('filter', () => {
  it('/ types a filter that applies as typed; enter keeps it, esc clears it', async () => {
    const r = await open(loadedStore());
    await r.press('/');
    expect(lines(r.frame()).at(-1)).toBe('filter: _   pod: ns: kind: reason: ip: netns: dns: or any word · enter keeps ·…');
    await r.press('i', 'p', ':', '1', '9', '8', '.', '1', '8', '.', '2', '1', '1', '.');
    expect(lines(r.frame()).at(-1)).toMatch(/^filter: ip:198\.18\.211\._ /);
    expect(groupRows(r.frame()).map((l) => l.slice(0, 24).trimEnd())).toEqual(['›netfilter_rule      44', ' martian_source       3', ' no_socket            2']);
    await r.press(KEY.enter);
    expect(line(r.frame(), '─ drops by')).toMatch(/^─ drops by kind · sort rate · filter "ip:198\.18\.211\." 49 shown, 232 hidden ─+$/);
    expect(lines(r.frame()).at(-1)).toMatch(/^↑↓ select {2}⏎ close/);
    // esc closes the detail pane (open from the start) first, then clears the filter
    await r.press(KEY.esc);
    expect(line(r.frame(), '─ detail')).toBeUndefined();
    expect(line(r.frame(), '─ drops by')).toMatch(/filter/);
    await r.press(KEY.esc);
    expect(groupRows(r.frame())).toHaveLength(4);
    expect(line(r.frame(), '─ drops by')).not.toMatch(/filter/);
  });

  it('says so when nothing matches, and backspace edits', async () => {
    const r = await open(loadedStore());
    await r.press('/', 'z', 'z');
    expect(groupRows(r.frame())).toEqual(['  no drops match "zz" (esc clears the filter)']);
    await r.press(KEY.backspace, KEY.backspace, 'd', 'n', 's', ':', 'p', 'a', 'y', KEY.enter);
    expect(groupRows(r.frame()).map((l) => l.slice(0, 20).trimEnd())).toEqual(['›no_socket       2']);
  });
});

describe('filter language', () => {
  it('says why a half-typed filter does not parse yet, and keeps the last one that did', async () => {
    const r = await open(loadedStore());
    await r.press('/', 'k', 'i', 'n', 'd', '=', 'n', 'o', '_', 's', 'o', 'c', 'k', 'e', 't', ' ', 'o', 'r', ' ', '(');
    expect(lines(r.frame()).at(-1)).toBe('filter: kind=no_socket or (_   expected a term, found the end (column 20) · esc…');
    expect(groupRows(r.frame()).map((l) => l.slice(0, 20).trimEnd())).toEqual(['›no_socket       4']);
    await r.press('k', 'i', 'n', 'd', '=', 'm', 'a', 'r', 't', 'i', 'a', 'n', '*', ')');
    expect(lines(r.frame()).at(-1)).toMatch(/^filter: kind=no_socket or \(kind=martian\*\)_ {3}pod: ns:/);
    expect(groupRows(r.frame()).map((l) => l.slice(0, 24).trimEnd())).toEqual(['›martian_source       3', ' no_socket            4']);
  });
});

describe('detail pane', () => {
  it('is open from the start where there is room; enter closes it and opens it again', async () => {
    const r = await open(loadedStore());
    const first = r.frame();
    await r.press(KEY.enter);
    expect(line(r.frame(), '─ detail')).toBeUndefined();
    expect(lines(r.frame()).at(-1)).toMatch(/^↑↓ select {2}⏎ detail/);
    expect(groupRows(r.frame())).toHaveLength(4);
    await r.press(KEY.enter);
    expect(r.frame()).toBe(first);
    // the choice holds: moving the selection does not open it again
    await r.press(KEY.enter, KEY.down, KEY.up);
    expect(line(r.frame(), '─ detail')).toBeUndefined();
  });

  it('starts closed on a terminal too small for both, and enter opens it there', async () => {
    const r = await open(loadedStore(), 80, 20);
    expect(line(r.frame(), '─ detail')).toBeUndefined();
    await r.press(KEY.enter);
    expect(line(r.frame(), '─ detail: netfilter_rule')).toBeDefined();
    expectFits(r.frame(), 80, 20);
  });

  it('shows what, what to do, pods, flows, kernel of the selected group', async () => {
    const r = await open(loadedStore());
    expect(r.frame()).toMatchInlineSnapshot(`
      "droptrace  END OF RECORDING   node vm  kernel 6.18.44-fc-v669  up 8s
      42.2 drops/s  lost 0  total 281  kernel exact 281  only netns 4026532528
      probes ✓ kfree_skb ✓ neigh_create ✗ neigh_alloc ✗ ct_alloc ✗ martian (? why)
      ─ kernel tables at 09:52:41 UTC ────────────────────────────────────────────────
        arp_cache ipv4             10/1024   1% ░░░░░░░░░░  of gc_thresh3, gc_thresh1…
        ndisc_cache ipv6           23/1024   2% ░░░░░░░░░░  of gc_thresh3, gc_thresh1…
        … 3 more (a taller terminal shows them)
      ─ drops by kind · sort rate ────────────────────────────────────────────────────
       KIND             TOTAL  RATE/s LAST 60s                       FIRST    LAST
      ›netfilter_rule     264    40.8                           ▃█▂  09:52:34 09:52:38
       martian_source       3     0.6                             █  09:52:39 09:52:39
       not_specified       10     0.4                          █▃▂▂  09:52:33 09:52:38
       no_socket            4     0.4                          ▄▄ █  09:52:33 09:52:39
      ─ detail: netfilter_rule · 264 drops · 40.8/s · first 09:52:34 · last 09:52:38…
      what    a firewall rule (iptables/nftables) returned DROP for this packet at
              netfilter
      do      find the rule in netns 4026532528: nft list ruleset, or iptables-save -c
              (its packet counters show which one matched)
      pods    shop/checkout-7f9c ×220 · payments/api-5d8b ×44
      flows   udp 198.18.210.1:41000 → 198.18.210.2:5301 ×220 at 09:52:38
              udp 198.18.211.1:41001 → 198.18.210.2:5301 ×44 at 09:52:38
      kernel  reason NETFILTER_DROP ×264 (kernel 264)  at nft_do_chain ×264  dev dtub…
      ↑↓ select  ⏎ close  g group  s sort  / filter  p pause  c clear  q quit  ? help"
    `);
    expectFits(r.frame(), 80, 24);
  });

  it('follows the selection and shows the DNS question of dropped queries', async () => {
    const r = await open(loadedStore(), 100, 30);
    await r.press(KEY.down, KEY.down, KEY.down);
    const f = r.frame();
    expect(line(f, '─ detail: ')).toMatch(/^─ detail: no_socket · 4 drops · 0\.4\/s · first 09:52:33 · last 09:52:39 UTC ─+$/);
    expect(line(f, 'dns ')).toBe('dns     api.payments.svc.cluster.local. A');
    expect(line(f, 'flows ')).toBe('flows   udp 198.18.211.1:47359 → 198.18.211.2:53 ×1 at 09:52:39');
    expect(line(f, 'kernel ')).toBe('kernel  reason NO_SOCKET ×4 (kernel 4)  at __udp4_lib_rcv ×4  dev dtub6d77d5 ×2 · dtud6d77d5 ×2');
    expect(line(f, 'pods ')).toBe('pods    payments/api-5d8b ×2 · shop/checkout-7f9c ×2');
    expect(line(f, 'what ')).toBe('what    DNS query for api.payments.svc.cluster.local. (A) dropped: the kernel dropped the packet');
    await r.press(KEY.esc);
    expect(line(r.frame(), '─ detail')).toBeUndefined();
  });
});

const statsLost: StreamLine = {
  type: 'stats',
  time: '2026-11-24T09:52:41.900Z',
  final: false,
  events: 157,
  folded: 0,
  lost: { ring_buffer: 120, userspace: 3, total: 123 },
  decode_errors: 2,
  enrichment_failures: 0,
  counters_failures: 0,
  kernel: { drops: 403, suppressed: 0, by_reason: { NETFILTER_DROP: 387 } },
};

describe('lost events', () => {
  it('are in the header, in the alarm style, with where they were lost', async () => {
    const store = loadedStore();
    store.ingest(statsLost);
    const r = await open(store);
    expect(lines(r.frame())[1]).toBe('42.2 drops/s  lost 123 (ring 120, user 3)  total 281  kernel exact 403  decode…');
  });

  it('stay visible on a narrow terminal, while paused, and after clear', async () => {
    const store = loadedStore();
    const r = await open(store, 50, 12);
    store.ingest(statsLost);
    await r.press('p', 'c');
    expect(lines(r.frame()).slice(0, 2)).toEqual(['droptrace  PAUSED +0 new   node vm  kernel 6.18.4…', '0 drops/s  lost 123 (ring 120, user 3)  total 0…']);
    expectFits(r.frame(), 50, 12);
  });

  it('say "?" until the first stats line, never a reassuring 0', async () => {
    const store = new TuiStore({ source: 'live' });
    const r = await open(store);
    expect(lines(r.frame()).slice(0, 3)).toEqual([
      'droptrace  ATTACHING…   node ?  kernel ?  up -',
      '0 drops/s  lost ? (no stats line yet)  total 0',
      'probes attaching…',
    ]);
  });
});

const fullArp: CountersLine = {
  type: 'counters',
  version: 1,
  time: '2026-11-24T09:52:41.950Z',
  interval_s: 1,
  netns_self: 4026531840,
  neigh: [
    { table: 'arp_cache', family: 'ipv4', entries: 1000, gc_thresh1: 128, gc_thresh2: 512, gc_thresh3: 1024, fill: 0.977, stats: {}, rates: { table_fulls: 312 } },
    { table: 'ndisc_cache', family: 'ipv6', entries: 9, gc_thresh1: 128, gc_thresh2: 512, gc_thresh3: 1024, fill: 0.009, stats: {}, rates: null },
  ],
  conntrack: {
    nf_conntrack_max: 262144,
    netns_total: 40,
    netns_idle: 30,
    netns: Array.from({ length: 10 }, (_, i) => ({ netns: 4026532100 + i, name: null, pid: 100 + i, comm: `app${i}`, self: false, init: false, count: 10 - i, fill: (10 - i) / 262144, stats: {}, rates: null })),
  },
  nic: [{ ifname: 'eth0', netns: 4026531840, driver: 'ena', virtual: false, stats: {}, allowance: { conntrack_allowance_exceeded: 1200, pps_allowance_exceeded: 0 }, rates: { conntrack_allowance_exceeded: 4.5, pps_allowance_exceeded: 0 } }],
  warnings: [],
  unavailable: [],
  scan: { pids: 1, netns: 40, vanished: 0, denied: 0 },
  cost_ms: 3,
};

describe('tables panel', () => {
  it('marks a table past 90% with !, and keeps it when space is short', async () => {
    const store = loadedStore();
    store.ingest(fullArp);
    const r = await open(store);
    // with the detail pane open (the default at 80x24) there is room for two lines: the warnings win
    const g = lines(r.frame());
    const t = g.findIndex((l) => l.startsWith('─ kernel tables'));
    expect(g.slice(t + 1, t + 4).map((l) => l.slice(0, 40))).toEqual([
      '! arp_cache ipv4           1000/1024  98',
      '  nic ! eth0 conntrack_allowance_exceede',
      '  … 4 more (a taller terminal shows them',
    ]);
    await r.press(KEY.enter);
    const f = r.frame();
    const at = lines(f).findIndex((l) => l.startsWith('─ kernel tables'));
    expect(lines(f).slice(at, at + 8)).toEqual([
      '─ kernel tables at 09:52:41 UTC ────────────────────────────────────────────────',
      '! arp_cache ipv4           1000/1024  98% ██████████  table_fulls 312/s  of gc_…',
      '  ndisc_cache ipv6            9/1024   1% ░░░░░░░░░░  of gc_thresh3, gc_thresh1…',
      '  conntrack app0[100]      10/262144   0% ░░░░░░░░░░  of nf_conntrack_max',
      '  conntrack app1[101]       9/262144   0% ░░░░░░░░░░  of nf_conntrack_max',
      '  conntrack app2[102]       8/262144   0% ░░░░░░░░░░  of nf_conntrack_max  (+37…',
      '  nic ! eth0 conntrack_allowance_exceeded 4.5/s eth0 pps_allowance_exceeded 0.0…',
      '─ drops by kind · sort rate ────────────────────────────────────────────────────',
    ]);
  });

  it('shows allowance counters as rates on a taller terminal', async () => {
    const store = loadedStore();
    store.ingest(fullArp);
    const r = await open(store, 120, 40);
    expect(line(r.frame(), '  conntrack app2[102]')).toBe(
      '  conntrack app2[102]             8/262144   0% ░░░░░░░░░░  of nf_conntrack_max  (+37 netns less full)',
    );
    expect(line(r.frame(), '  nic ')).toBe('  nic ! eth0 conntrack_allowance_exceeded 4.5/s eth0 pps_allowance_exceeded 0.0/s');
  });
});

describe('help, pause, quit', () => {
  it('? lists every probe and why it is not live', async () => {
    const r = await open(loadedStore(), 120, 30);
    await r.press('?');
    const f = r.frame();
    expect(line(f, '─ help')).toMatch(/^─ help \(\? or esc closes\) ─+$/);
    expect(lines(f).filter((l) => /^ {2}[✓·✗] /.test(l))).toEqual([
      '  ✓ kfree_skb tp_btf/kfree_skb live',
      '  · kfree_skb tracepoint/skb/kfree_skb not needed: tp_btf/kfree_skb is attached',
      '  ✓ neigh_create tracepoint/neigh/neigh_create live',
      '  ✗ neigh_alloc fexit/__neigh_create this kernel refuses fentry/fexit programs (EPERM on load of fexit/__neigh_create)',
      '  ✗ neigh_alloc kretprobe/__neigh_create this kernel has no kprobes (CONFIG_KPROBES off)',
      '  ✗ ct_alloc fexit/__nf_conntrack_alloc this kernel refuses fentry/fexit programs (EPERM on load of fexit/__nf_conntrac…',
      '  ✗ ct_alloc kretprobe/__nf_conntrack_alloc this kernel has no kprobes (CONFIG_KPROBES off)',
      '  ✗ martian fentry/ip_handle_martian_source this kernel refuses fentry/fexit programs (EPERM on load of fentry/ip_handl…',
      '  ✗ martian kprobe/ip_handle_martian_source this kernel has no kprobes (CONFIG_KPROBES off)',
    ]);
    expect(line(f, '  pods from')).toBe('  pods from file (2 pods)');
    expect(line(f, 'probes ')).toBe('probes ✓ kfree_skb ✓ neigh_create ✗ neigh_alloc ✗ ct_alloc ✗ martian (? why)');
    await r.press(KEY.esc);
    expect(line(r.frame(), '─ help')).toBeUndefined();
  });

  it('p freezes the groups and counts what arrives meanwhile', async () => {
    const store = loadedStore();
    const r = await open(store);
    await r.press('p');
    const before = groupRows(r.frame());
    store.ingest({ ...fixtureDrop(), count: 5 } as StreamLine);
    await new Promise((res) => setTimeout(res, 250));
    expect(lines(r.frame())[0]).toMatch(/^droptrace {2}PAUSED \+5 new {3}node vm/);
    expect(groupRows(r.frame())).toEqual(before);
    expect(lines(r.frame()).at(-1)).toMatch(/p resume/);
    await r.press('p');
    expect(groupRows(r.frame())[0]).toMatch(/^›netfilter_rule {5}269 /);
  });

  it('takes keys that arrive together (fast typing, a paste) one by one', async () => {
    const r = await open(loadedStore());
    await r.press('s\r');
    expect(line(r.frame(), '─ drops by')).toMatch(/sort total/);
    // Enter closed the detail pane that was open from the start
    expect(line(r.frame(), '─ detail')).toBeUndefined();
    await r.press('/', 'kind:martian\r');
    expect(groupRows(r.frame()).map((l) => l.slice(0, 15))).toEqual(['›martian_source']);
    expect(lines(r.frame()).at(-1)).toMatch(/^↑↓ select/);
  });

  it('q quits', async () => {
    let quit = 0;
    const r = render(<App store={loadedStore()} theme={theme} size={{ columns: 80, rows: 24 }} onQuit={() => quit++} />);
    unmount = r.unmount;
    await settle();
    r.stdin.write('q');
    for (let i = 0; i < 200 && quit === 0; i++) await settle();
    expect(quit).toBe(1);
  });
});

/** One more drop like the fixture's rule drops, just after the recording ends. */
function fixtureDrop(): StreamLine {
  return {
    type: 'drop',
    time: '2026-11-24T09:52:42.100Z',
    family: 'netfilter',
    kind: 'netfilter_rule',
    reason: 'NETFILTER_DROP',
    location: 'nft_do_chain',
    netns: 4026532528,
    ifname: 'dtub6d77d5',
    ifindex: 2,
    flow: { proto: 'udp', src: '198.18.210.1', dst: '198.18.210.2', sport: 41000, dport: 5301 },
    pod: null,
    count: 1,
    explain: 'a firewall rule (iptables/nftables) returned DROP for this packet at netfilter',
    hint: 'find the rule',
  };
}

describe('size, resize, colour and glyphs', () => {
  it('fits every screen into 80x24 and into a tiny terminal', async () => {
    for (const [c, rws] of [
      [80, 24],
      [40, 10],
      [200, 60],
    ] as const) {
      const r = await open(loadedStore(), c, rws);
      for (const keys of [[], [KEY.enter], ['g', 'g'], ['?']]) {
        await r.press(...keys);
        expectFits(r.frame(), c, rws);
      }
      r.unmount();
    }
  });

  it('follows the terminal when it is resized', async () => {
    const r = render(<App store={loadedStore()} theme={theme} onQuit={() => undefined} />);
    unmount = r.unmount;
    await settle();
    // ink-testing-library's stdout is 100 columns and has no rows: 24 assumed
    expectFits(r.lastFrame() ?? '', 100, 24);
    Object.defineProperty(r.stdout, 'columns', { value: 60, configurable: true });
    Object.defineProperty(r.stdout, 'rows', { value: 16, configurable: true });
    r.stdout.emit('resize');
    await settle();
    expectFits(r.lastFrame() ?? '', 60, 16);
    expect(lines(r.lastFrame() ?? '')[0]).toBe('droptrace  END OF RECORDING   node vm  kernel 6.18.44-fc-v6…');
  });

  it('NO_COLOR turns every colour off (bold, dim and inverse stay)', () => {
    const colours = (t: ReturnType<typeof themeFrom>) => [t.warn, t.bad, t.good, t.accent];
    expect(colours(themeFrom({ NO_COLOR: '1' }))).toEqual([undefined, undefined, undefined, undefined]);
    expect(colours(themeFrom({ NO_COLOR: '' }))).toEqual(['yellow', 'red', 'green', 'cyan']);
    expect(colours(themeFrom({}))).toEqual(['yellow', 'red', 'green', 'cyan']);
  });

  it('draws with ASCII only when the locale is not UTF-8', async () => {
    const store = loadedStore();
    const r = render(<App store={store} theme={themeFrom({ LANG: 'C', NO_COLOR: '1' })} size={{ columns: 80, rows: 24 }} onQuit={() => undefined} />);
    unmount = r.unmount;
    await settle();
    const before = r.frames.length;
    r.stdin.write('\r');
    for (let i = 0; i < 200 && r.frames.length === before; i++) await settle();
    const f = r.lastFrame() ?? '';
    expect(f.match(/[^\x20-\x7e\n]/g)).toBeNull();
    expect(groupRows(f)[0]).toBe('>netfilter_rule     264    40.8                           -@:  09:52:34 09:52:38');
  });
});
