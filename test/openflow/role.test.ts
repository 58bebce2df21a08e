import test from 'ava';
import {
  OFPCR_ROLE,
  OFPCRR,
  OfDecodeError,
  OfEncodeError,
  ONF_VENDOR_ID,
  ONFT_ROLE_STATUS,
  decodeMessage,
  decodeRoleStatus,
  encodeMessage,
  isRoleStatus,
  roleStatus,
  type Experimenter,
} from '../../src/openflow';

/**
 * What OVS 3.1 sends an OF1.3 controller that another controller demoted. `ovs-ofctl ofp-print` of
 * these bytes prints: ONFT_ROLE_STATUS (OF1.3) (xid=0x0): role=secondary generation_id=2 reason=primary_request
 */
const OVS_ROLE_STATUS = Buffer.from('04040020000000004f4e46000000077700000003000000000000000000000002', 'hex');

function experimenter(bytes: Buffer): Experimenter {
  const res = decodeMessage(bytes);
  if (!res.ok || res.message.type !== 'EXPERIMENTER') throw new Error('not an EXPERIMENTER message');
  return res.message;
}

test('ONFT_ROLE_STATUS: the OVS vector decodes, and encoding it gives the same bytes', (t) => {
  const exp = experimenter(OVS_ROLE_STATUS);
  t.like(exp, { experimenter: ONF_VENDOR_ID, expType: ONFT_ROLE_STATUS });
  t.true(isRoleStatus(exp));
  t.deepEqual(decodeRoleStatus(exp), { xid: 0, role: OFPCR_ROLE.SLAVE, reason: OFPCRR.MASTER_REQUEST, generationId: 2n, properties: Buffer.alloc(0) });
  t.deepEqual(encodeMessage(roleStatus(0, OFPCR_ROLE.SLAVE, OFPCRR.MASTER_REQUEST, 2n)), OVS_ROLE_STATUS);
});

test('role status round-trips the whole u64 generation range and keeps properties', (t) => {
  for (const generationId of [1n, 0x1234_5678_9abc_def0n, (1n << 64n) - 1n]) {
    const bytes = encodeMessage(roleStatus(7, OFPCR_ROLE.MASTER, OFPCRR.CONFIG, generationId));
    t.like(decodeRoleStatus(experimenter(bytes)), { xid: 7, role: OFPCR_ROLE.MASTER, reason: OFPCRR.CONFIG, generationId });
  }
  const withProperty = roleStatus(1, OFPCR_ROLE.SLAVE, OFPCRR.EXPERIMENTER, 3n);
  const property = Buffer.from('ffff000800000000', 'hex');
  const decoded = decodeRoleStatus({ ...withProperty, data: Buffer.concat([withProperty.data, property]) });
  t.deepEqual((decoded as { properties: Buffer }).properties, property);
  t.throws(() => roleStatus(1, OFPCR_ROLE.SLAVE, OFPCRR.CONFIG, 1n << 64n), { instanceOf: OfEncodeError });
});

test('a malformed role status is a typed decode error with the offset in the whole message', (t) => {
  const exp = experimenter(OVS_ROLE_STATUS);
  const short = decodeRoleStatus({ ...exp, data: exp.data.subarray(0, 12) });
  t.true(short instanceof OfDecodeError);
  t.like(short as OfDecodeError, { kind: 'bad_length', context: { offset: 16, xid: 0 } });
  const badRole = Buffer.from(exp.data);
  badRole.writeUInt32BE(9, 0);
  t.like(decodeRoleStatus({ ...exp, data: badRole }) as OfDecodeError, { kind: 'bad_value', context: { offset: 16 } });
  const notRoleStatus = decodeRoleStatus({ ...exp, expType: 2300 });
  t.like(notRoleStatus as OfDecodeError, { kind: 'unknown_type' });
});
