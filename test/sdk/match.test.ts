import test from 'ava';
import { FlowBuildError, flowKey } from '../../src/sdk';
import { matchFromSpec } from '../../src/sdk/match';

// OVS reports a field masked with all ones as an exact match: the reconciler must see the same
// flow, or it re-adds it on every sync (seen with the ACL's single-port rules, tcp_dst=8080/0xffff).
test('an all-ones mask is an exact match, as OVS reports it back', (t) => {
  const masked = matchFromSpec({ eth_type: 0x0800, ip_proto: 6, tcp_dst: { value: 8080, mask: 0xffff }, metadata: { value: 101n, mask: 0xffffffffffffffffn } });
  t.deepEqual(masked, matchFromSpec({ eth_type: 0x0800, ip_proto: 6, tcp_dst: 8080, metadata: 101n }));
  const key = (match: Parameters<typeof flowKey>[0]['match']) => flowKey({ tableId: 7, priority: 60000, match });
  t.is(key([{ field: 'tcp_dst', value: 8080, mask: 0xffff }]), key([{ field: 'tcp_dst', value: 8080 }]));
  t.is(key([{ field: 'tunnel_id', value: 5n, mask: 0xffffffffffffffffn }]), key([{ field: 'tunnel_id', value: 5n }]));
  // a real mask stays
  t.not(key([{ field: 'tcp_dst', value: 8064, mask: 0xfff0 }]), key([{ field: 'tcp_dst', value: 8064 }]));
  t.deepEqual(matchFromSpec({ tcp_dst: { value: 8064, mask: 0xfff0 } }), [{ field: 'tcp_dst', value: 8064, mask: 0xfff0 }]);
});

test('a match field given as undefined is an error, not a wildcard', (t) => {
  const absent: string | undefined = undefined;
  const err = t.throws(() => matchFromSpec({ eth_type: 0x0800, ipv4_dst: absent }), { instanceOf: FlowBuildError });
  t.regex(err!.message, /ipv4_dst is undefined/);
  t.deepEqual(matchFromSpec({ eth_type: 0x0800 }).map((m) => m.field), ['eth_type']);
});
