import { describe, expect, it } from 'vitest';
import { Symbolizer } from '../../src/pipeline/kallsyms.js';

const text = [
  'ffffffff81f653c0 T __pfx_nft_do_chain',
  'ffffffff81f653d0 T nft_do_chain',
  'ffffffff81f66000 t nf_hook_slow',
  'ffffffff82000000 D some_data',
  'ffffffffc0a01000 t ext_func\t[some_mod]',
  'ffffffffc0a02000 t ip_rcv_finish_core.constprop.0',
  'ffffffffc0a03000 t foo.isra.0.cold',
].join('\n');

describe('Symbolizer', () => {
  const s = new Symbolizer(text);
  it('finds the function that contains an address', () => {
    expect(s.lookup(0xffffffff81f657b8n)).toBe('nft_do_chain');
    expect(s.lookup(0xffffffff81f66001n)).toBe('nf_hook_slow');
    expect(s.lookup(0xffffffffc0a01010n)).toBe('ext_func');
  });
  it('names compiler clones after their function', () => {
    expect(s.lookup(0xffffffffc0a02010n)).toBe('ip_rcv_finish_core');
    expect(s.lookup(0xffffffffc0a03010n)).toBe('foo');
  });
  it('prints unknown addresses in hex', () => {
    expect(s.lookup(0x1000n)).toBe('0x1000');
    expect(s.lookup(0n)).toBe('0x0');
  });
  it('sees when kptr_restrict hides addresses', () => {
    expect(new Symbolizer('0000000000000000 T foo').usable).toBe(false);
    expect(s.usable).toBe(true);
  });
  it('reads the file as bytes and sorts a table listed out of order', () => {
    const shuffled = Buffer.from(['ffffffffc0a01000 t ext_func\t[some_mod]', 'ffffffff81f66000 t nf_hook_slow', 'ffffffff81f653d0 T nft_do_chain', 'not a line', ''].join('\n'));
    const u = new Symbolizer(shuffled);
    expect(u.lookup(0xffffffff81f657b8n)).toBe('nft_do_chain');
    expect(u.lookup(0xffffffff81f66001n)).toBe('nf_hook_slow');
    expect(u.lookup(0xffffffffc0a01010n)).toBe('ext_func');
    expect(u.lookup(0xffffffff81f653cfn)).toBe('0xffffffff81f653cf');
  });
});
