import { describe, expect, it } from 'vitest';
import { classify } from '../src/classify.js';

const c = (reason: string, src: string | null = '198.18.0.1', dst: string | null = '198.18.0.2', location = 'x') =>
  classify({ reason, location, src, dst });

describe('classify', () => {
  it.each([
    ['NETFILTER_DROP', 'netfilter', 'netfilter_rule'],
    ['NEIGH_CREATEFAIL', 'neigh', 'neigh_table_full'],
    ['NEIGH_FAILED', 'neigh', 'neigh_resolution_failed'],
    ['NEIGH_QUEUEFULL', 'neigh', 'neigh_queue_full'],
    ['NEIGH_DEAD', 'neigh', 'neigh_dead'],
    ['IP_INVALID_SOURCE', 'martian', 'martian_source'],
    ['IP_LOCAL_SOURCE', 'martian', 'martian_source'],
    ['IP_INVALID_DEST', 'martian', 'martian_destination'],
    ['IP_RPFILTER', 'martian', 'rp_filter'],
    ['NO_SOCKET', 'other', 'no_socket'],
    ['TCP_CSUM', 'other', 'tcp_csum'],
  ])('%s is %s/%s', (reason, family, kind) => {
    expect(c(reason)).toEqual({ family, kind });
  });

  it('tells a loopback source from a loopback destination (IP_LOCALNET)', () => {
    expect(c('IP_LOCALNET', '127.0.0.9', '198.18.0.2')).toEqual({ family: 'martian', kind: 'martian_source' });
    expect(c('IP_LOCALNET', '198.18.0.1', '127.0.0.1')).toEqual({ family: 'martian', kind: 'martian_destination' });
  });

  it('calls a 0.0.0.0/8 destination martian, other IP_INADDRERRORS not', () => {
    expect(c('IP_INADDRERRORS', '198.18.0.1', '0.0.0.9')).toEqual({ family: 'martian', kind: 'martian_destination' });
    expect(c('IP_INADDRERRORS', '198.18.0.1', '198.19.0.9')).toEqual({ family: 'other', kind: 'ip_inaddrerrors' });
  });
});
