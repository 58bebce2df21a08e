// Owner: OXM helper. Converts a Match into Ryu's {"OFPMatch": {...}} shape.
import type { FieldRef, Match, OxmTlv } from '../../../src/openflow';

/** Our names whose Ryu spelling differs (Ryu suffixes NXM duplicates of standard fields with '_nxm'). */
const RYU_NAMES: Record<string, string> = {
  nxm_of_eth_dst: 'eth_dst_nxm',
  nxm_of_eth_src: 'eth_src_nxm',
  nxm_of_eth_type: 'eth_type_nxm',
  nxm_of_ip_proto: 'ip_proto_nxm',
  nxm_nx_tun_id: 'tunnel_id_nxm',
};

function ryuName(name: string): string {
  return RYU_NAMES[name] ?? name;
}

/**
 * Ryu names a basic-class OXM it does not know 'field_<class << 7 | field>' and shows its value and
 * mask as base64. No vector has one; Ryu's naming of unknown experimenter OXMs is not reproduced.
 */
function unknownToRyu(tlv: Extract<OxmTlv, { field: 'unknown' }>): unknown {
  const half = tlv.hasMask ? tlv.payload.length / 2 : tlv.payload.length;
  const value = tlv.payload.subarray(0, half).toString('base64');
  const mask = tlv.hasMask ? tlv.payload.subarray(half).toString('base64') : null;
  return { OXMTlv: { field: `field_${(tlv.oxmClass << 7) | tlv.oxmField}`, mask, value } };
}

export function oxmToRyu(tlv: OxmTlv): unknown {
  if (tlv.field === 'unknown') return unknownToRyu(tlv);
  return { OXMTlv: { field: ryuName(tlv.field), mask: tlv.mask ?? null, value: tlv.value } };
}

export function matchToRyu(m: Match): unknown {
  return { OFPMatch: { oxm_fields: m.map(oxmToRyu), type: 1 } };
}

export function fieldRefToRyu(ref: FieldRef): string {
  return ryuName(ref.name);
}
