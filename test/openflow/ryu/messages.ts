// Owner: messages helper. Returns undefined for messages this family does not convert.
import { encodeActions, flowModCommandCode, OFPET, Writer, type Action, type HelloElement, type OfMessage, type Port } from '../../../src/openflow';
import { actionToRyu, instructionToRyu } from './actions';
import { matchToRyu } from './match';

const base64 = (b: Buffer): string => b.toString('base64');

function helloElementToRyu(el: HelloElement): unknown {
  return el.type === 'versionbitmap'
    ? { OFPHelloElemVersionBitmap: { type: 1, versions: el.versions } }
    : { OFPHelloElemHeader: { type: el.elemType, data: base64(el.data) } };
}

/** struct ofp_port as Ryu's OFPPort (shared with PORT_DESC replies). */
export function portToRyu(p: Port): unknown {
  return {
    OFPPort: {
      port_no: p.portNo,
      hw_addr: p.hwAddr,
      name: p.name,
      config: p.config,
      state: p.state,
      curr: p.curr,
      advertised: p.advertised,
      supported: p.supported,
      peer: p.peer,
      curr_speed: p.currSpeed,
      max_speed: p.maxSpeed,
    },
  };
}

/** Ryu reports packet_out's actions_len, which is derived from the encoded actions. */
function encodedActionsLength(actions: readonly Action[]): number {
  const w = new Writer();
  encodeActions(w, actions);
  return w.pos;
}

export function basicToRyu(msg: OfMessage): unknown {
  switch (msg.type) {
    case 'HELLO':
      return { OFPHello: { elements: msg.elements.map(helloElementToRyu) } };
    case 'ERROR':
      return {
        OFPErrorMsg:
          msg.errType === OFPET.EXPERIMENTER
            ? { type: msg.errType, code: null, exp_type: msg.code, experimenter: msg.experimenter, data: base64(msg.data) }
            : { type: msg.errType, code: msg.code, data: base64(msg.data) },
      };
    case 'ECHO_REQUEST':
      return { OFPEchoRequest: { data: base64(msg.data) } };
    case 'ECHO_REPLY':
      return { OFPEchoReply: { data: base64(msg.data) } };
    case 'EXPERIMENTER':
      return { OFPExperimenter: { experimenter: msg.experimenter, exp_type: msg.expType, data: base64(msg.data) } };
    case 'FEATURES_REQUEST':
      return { OFPFeaturesRequest: {} };
    case 'FEATURES_REPLY':
      return {
        OFPSwitchFeatures: {
          datapath_id: msg.datapathId,
          n_buffers: msg.nBuffers,
          n_tables: msg.nTables,
          auxiliary_id: msg.auxiliaryId,
          capabilities: msg.capabilities,
        },
      };
    case 'GET_CONFIG_REQUEST':
      return { OFPGetConfigRequest: {} };
    case 'GET_CONFIG_REPLY':
      return { OFPGetConfigReply: { flags: msg.flags, miss_send_len: msg.missSendLen } };
    case 'SET_CONFIG':
      return { OFPSetConfig: { flags: msg.flags, miss_send_len: msg.missSendLen } };
    case 'PACKET_IN':
      return {
        OFPPacketIn: {
          buffer_id: msg.bufferId,
          total_len: msg.totalLen,
          reason: msg.reason,
          table_id: msg.tableId,
          cookie: msg.cookie,
          match: matchToRyu(msg.match),
          data: base64(msg.data),
        },
      };
    case 'FLOW_REMOVED':
      return {
        OFPFlowRemoved: {
          cookie: msg.cookie,
          priority: msg.priority,
          reason: msg.reason,
          table_id: msg.tableId,
          duration_sec: msg.durationSec,
          duration_nsec: msg.durationNsec,
          idle_timeout: msg.idleTimeout,
          hard_timeout: msg.hardTimeout,
          packet_count: msg.packetCount,
          byte_count: msg.byteCount,
          match: matchToRyu(msg.match),
        },
      };
    case 'PORT_STATUS':
      return { OFPPortStatus: { reason: msg.reason, desc: portToRyu(msg.desc) } };
    case 'PACKET_OUT':
      return {
        OFPPacketOut: {
          buffer_id: msg.bufferId,
          in_port: msg.inPort,
          actions_len: encodedActionsLength(msg.actions),
          actions: msg.actions.map(actionToRyu),
          data: base64(msg.data),
        },
      };
    case 'FLOW_MOD':
      return {
        OFPFlowMod: {
          cookie: msg.cookie,
          cookie_mask: msg.cookieMask,
          table_id: msg.tableId,
          command: flowModCommandCode(msg.command),
          idle_timeout: msg.idleTimeout,
          hard_timeout: msg.hardTimeout,
          priority: msg.priority,
          buffer_id: msg.bufferId,
          out_port: msg.outPort,
          out_group: msg.outGroup,
          flags: msg.flags,
          match: matchToRyu(msg.match),
          instructions: msg.instructions.map(instructionToRyu),
        },
      };
    case 'PORT_MOD':
      return {
        OFPPortMod: { port_no: msg.portNo, hw_addr: msg.hwAddr, config: msg.config, mask: msg.mask, advertise: msg.advertise },
      };
    case 'TABLE_MOD':
      return { OFPTableMod: { table_id: msg.tableId, config: msg.config } };
    case 'BARRIER_REQUEST':
      return { OFPBarrierRequest: {} };
    case 'BARRIER_REPLY':
      return { OFPBarrierReply: {} };
    case 'ROLE_REQUEST':
      return { OFPRoleRequest: { role: msg.role, generation_id: msg.generationId } };
    case 'ROLE_REPLY':
      return { OFPRoleReply: { role: msg.role, generation_id: msg.generationId } };
    case 'GET_ASYNC_REQUEST':
      return { OFPGetAsyncRequest: {} };
    case 'GET_ASYNC_REPLY':
    case 'SET_ASYNC':
      return {
        [msg.type === 'SET_ASYNC' ? 'OFPSetAsync' : 'OFPGetAsyncReply']: {
          packet_in_mask: msg.packetInMask,
          port_status_mask: msg.portStatusMask,
          flow_removed_mask: msg.flowRemovedMask,
        },
      };
    default:
      return undefined;
  }
}
