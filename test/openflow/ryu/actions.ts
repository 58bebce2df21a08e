// Owner: actions helper. Converts actions and instructions into Ryu's JSON shape
// (`{ClassName: {...}}`, keys as Ryu's to_jsondict writes them, len omitted since it is derived).
import type { Action, FieldRef, Instruction, LearnSource, LearnSpec } from '../../../src/openflow';
import { NX_VENDOR_ID } from '../../../src/openflow';
import { fieldRefToRyu, oxmToRyu } from './match';

const OFPAT_EXPERIMENTER = 0xffff;

function of(cls: string, type: number, body: Record<string, unknown> = {}): unknown {
  return { [cls]: { ...body, type } };
}

function nx(cls: string, subtype: number, body: Record<string, unknown> = {}): unknown {
  return { [cls]: { ...body, experimenter: NX_VENDOR_ID, subtype, type: OFPAT_EXPERIMENTER } };
}

/** Ryu keeps NXM offset and width packed as (ofs << 6) | (n_bits - 1) */
function ofsNbits(ofs: number, nBits: number): number {
  return (ofs << 6) | (nBits - 1);
}

function learnSource(src: LearnSource): unknown {
  return 'value' in src ? src.value : [fieldRefToRyu(src.field), src.ofs];
}

function learnSpecToRyu(spec: LearnSpec): unknown {
  const src = learnSource(spec.src);
  switch (spec.type) {
    case 'match':
      return { NXFlowSpecMatch: { src, dst: [fieldRefToRyu(spec.dst), spec.dstOfs], n_bits: spec.nBits } };
    case 'load':
      return { NXFlowSpecLoad: { src, dst: [fieldRefToRyu(spec.dst), spec.dstOfs], n_bits: spec.nBits } };
    case 'output':
      return { NXFlowSpecOutput: { src, dst: '', n_bits: spec.nBits } };
  }
}

function zoneToRyu(zone: number | { field: FieldRef; ofs: number; nBits: number }): Record<string, unknown> {
  return typeof zone === 'number'
    ? { zone_src: '', zone_ofs_nbits: zone }
    : { zone_src: fieldRefToRyu(zone.field), zone_ofs_nbits: ofsNbits(zone.ofs, zone.nBits) };
}

export function actionToRyu(a: Action): unknown {
  switch (a.type) {
    case 'output':
      return of('OFPActionOutput', 0, { port: a.port, max_len: a.maxLen });
    case 'copy_ttl_out':
      return of('OFPActionCopyTtlOut', 11);
    case 'copy_ttl_in':
      return of('OFPActionCopyTtlIn', 12);
    case 'set_mpls_ttl':
      return of('OFPActionSetMplsTtl', 15, { mpls_ttl: a.ttl });
    case 'dec_mpls_ttl':
      return of('OFPActionDecMplsTtl', 16);
    case 'push_vlan':
      return of('OFPActionPushVlan', 17, { ethertype: a.ethertype });
    case 'pop_vlan':
      return of('OFPActionPopVlan', 18);
    case 'push_mpls':
      return of('OFPActionPushMpls', 19, { ethertype: a.ethertype });
    case 'pop_mpls':
      return of('OFPActionPopMpls', 20, { ethertype: a.ethertype });
    case 'set_queue':
      return of('OFPActionSetQueue', 21, { queue_id: a.queueId });
    case 'group':
      return of('OFPActionGroup', 22, { group_id: a.groupId });
    case 'set_nw_ttl':
      return of('OFPActionSetNwTtl', 23, { nw_ttl: a.ttl });
    case 'dec_nw_ttl':
      return of('OFPActionDecNwTtl', 24);
    case 'set_field':
      return of('OFPActionSetField', 25, { field: oxmToRyu(a.field) });
    case 'push_pbb':
      return of('OFPActionPushPbb', 26, { ethertype: a.ethertype });
    case 'pop_pbb':
      return of('OFPActionPopPbb', 27);
    case 'experimenter':
      return of('OFPActionExperimenterUnknown', OFPAT_EXPERIMENTER, {
        experimenter: a.experimenter,
        data: a.data.toString('base64'),
      });
    case 'resubmit':
      return nx('NXActionResubmit', 1, { in_port: a.inPort });
    case 'resubmit_table':
      return nx('NXActionResubmitTable', 14, { in_port: a.inPort, table_id: a.tableId });
    case 'resubmit_table_ct':
      return nx('NXActionResubmitTableCT', 44, { in_port: a.inPort, table_id: a.tableId });
    case 'set_tunnel':
      return nx('NXActionSetTunnel', 2, { tun_id: a.tunId });
    case 'set_tunnel64':
      return nx('NXActionSetTunnel64', 9, { tun_id: a.tunId });
    case 'pop_queue':
      return nx('NXActionPopQueue', 5);
    case 'reg_move':
      return nx('NXActionRegMove', 6, {
        src_field: fieldRefToRyu(a.src),
        dst_field: fieldRefToRyu(a.dst),
        n_bits: a.nBits,
        src_ofs: a.srcOfs,
        dst_ofs: a.dstOfs,
      });
    case 'reg_load':
      return nx('NXActionRegLoad', 7, { dst: fieldRefToRyu(a.dst), ofs_nbits: ofsNbits(a.ofs, a.nBits), value: a.value });
    case 'reg_load2': {
      const tlv = (oxmToRyu(a.field) as { OXMTlv: { field: string; value: unknown; mask: unknown } }).OXMTlv;
      return nx('NXActionRegLoad2', 33, { dst: tlv.field, value: tlv.value, mask: tlv.mask });
    }
    case 'note':
      return nx('NXActionNote', 8, { note: [...a.note] });
    case 'output_reg':
      return nx('NXActionOutputReg', 15, { src: fieldRefToRyu(a.src), ofs_nbits: ofsNbits(a.ofs, a.nBits), max_len: a.maxLen });
    case 'output_reg2':
      return nx('NXActionOutputReg2', 32, { src: fieldRefToRyu(a.src), ofs_nbits: ofsNbits(a.ofs, a.nBits), max_len: a.maxLen });
    case 'learn':
      return nx('NXActionLearn', 16, {
        idle_timeout: a.idleTimeout,
        hard_timeout: a.hardTimeout,
        priority: a.priority,
        cookie: a.cookie,
        flags: a.flags,
        table_id: a.tableId,
        fin_idle_timeout: a.finIdleTimeout,
        fin_hard_timeout: a.finHardTimeout,
        specs: a.specs.map(learnSpecToRyu),
      });
    case 'exit':
      return nx('NXActionExit', 17);
    case 'dec_ttl':
      return nx('NXActionDecTtl', 18);
    case 'dec_ttl_cnt_ids':
      return nx('NXActionDecTtlCntIds', 21, { cnt_ids: a.cntIds });
    case 'fin_timeout':
      return nx('NXActionFinTimeout', 19, { fin_idle_timeout: a.idleTimeout, fin_hard_timeout: a.hardTimeout });
    case 'controller':
      return nx('NXActionController', 20, { max_len: a.maxLen, controller_id: a.controllerId, reason: a.reason });
    case 'controller2': {
      const body: Record<string, unknown> = {};
      if (a.maxLen !== undefined) body.max_len = a.maxLen;
      if (a.controllerId !== undefined) body.controller_id = a.controllerId;
      if (a.reason !== undefined) body.reason = a.reason;
      if (a.userdata !== undefined) body.userdata = [...a.userdata];
      if (a.pause) body.pause = true;
      if (a.meterId !== undefined) body.meter_id = a.meterId;
      return nx('NXActionController2', 37, body);
    }
    // Ryu reads the wire's offset as `start` and its bit count as `end`
    case 'stack_push':
      return nx('NXActionStackPush', 27, { field: fieldRefToRyu(a.field), start: a.ofs, end: a.nBits });
    case 'stack_pop':
      return nx('NXActionStackPop', 28, { field: fieldRefToRyu(a.field), start: a.ofs, end: a.nBits });
    case 'sample':
      return nx('NXActionSample', 29, {
        probability: a.probability,
        collector_set_id: a.collectorSetId,
        obs_domain_id: a.obsDomainId,
        obs_point_id: a.obsPointId,
      });
    case 'sample2':
      return nx('NXActionSample2', 38, {
        probability: a.probability,
        collector_set_id: a.collectorSetId,
        obs_domain_id: a.obsDomainId,
        obs_point_id: a.obsPointId,
        sampling_port: a.samplingPort,
      });
    case 'sample3':
      return nx('NXActionSample3', 41, {
        probability: a.probability,
        collector_set_id: a.collectorSetId,
        obs_domain_id: a.obsDomainId,
        obs_point_id: a.obsPointId,
        sampling_port: a.samplingPort,
        direction: a.direction,
      });
    case 'conjunction':
      return nx('NXActionConjunction', 34, { clause: a.clause, n_clauses: a.nClauses, id: a.id });
    case 'ct':
      return nx('NXActionCT', 35, {
        flags: a.flags,
        ...zoneToRyu(a.zone),
        recirc_table: a.recircTable,
        alg: a.alg,
        actions: a.actions.map(actionToRyu),
      });
    case 'nat':
      return nx('NXActionNAT', 36, {
        flags: a.flags,
        range_ipv4_min: a.ipv4Min ?? '',
        range_ipv4_max: a.ipv4Max ?? '',
        range_ipv6_min: a.ipv6Min ?? '',
        range_ipv6_max: a.ipv6Max ?? '',
        range_proto_min: a.protoMin ?? null,
        range_proto_max: a.protoMax ?? null,
      });
    case 'output_trunc':
      return nx('NXActionOutputTrunc', 39, { port: a.port, max_len: a.maxLen });
    case 'clone':
      return nx('NXActionClone', 42, { actions: a.actions.map(actionToRyu) });
    case 'ct_clear':
      return nx('NXActionCTClear', 43);
    case 'nx_unknown':
      return nx('NXActionUnknown', a.subtype, { data: a.data.toString('base64') });
  }
}

export function instructionToRyu(i: Instruction): unknown {
  switch (i.type) {
    case 'goto_table':
      return { OFPInstructionGotoTable: { table_id: i.tableId, type: 1 } };
    case 'write_metadata':
      return { OFPInstructionWriteMetadata: { metadata: i.metadata, metadata_mask: i.metadataMask, type: 2 } };
    case 'write_actions':
      return { OFPInstructionActions: { actions: i.actions.map(actionToRyu), type: 3 } };
    case 'apply_actions':
      return { OFPInstructionActions: { actions: i.actions.map(actionToRyu), type: 4 } };
    case 'clear_actions':
      return { OFPInstructionActions: { actions: [], type: 5 } };
    case 'meter':
      return { OFPInstructionMeter: { meter_id: i.meterId, type: 6 } };
    case 'experimenter':
      return { OFPInstructionExperimenter: { experimenter: i.experimenter, data: i.data.toString('base64'), type: 0xffff } };
  }
}
