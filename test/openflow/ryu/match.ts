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

/** Ryu names an OXM it does not know 'field_<n>' and keeps its bytes; only our registry gaps reach this. */
function unknownName(tlv: Extract<OxmTlv, { field: 'unknown' }>): string {
  return `field_${(tlv.oxmClass << 7) | tlv.oxmField}`;
}

export function oxmToRyu(tlv: OxmTlv): unknown {
  if (tlv.field === 'unknown') {
    return { OXMTlv: { field: unknownName(tlv), mask: null, value: tlv.payload.toString('base64') } };
  }
  return { OXMTlv: { field: ryuName(tlv.field), mask: tlv.mask ?? null, value: tlv.value } };
}

export function matchToRyu(m: Match): unknown {
  return { OFPMatch: { oxm_fields: m.map(oxmToRyu), type: 1 } };
}

export function fieldRefToRyu(ref: FieldRef): string {
  return ryuName(ref.name);
}
