// The OFPT_ERROR a controller sends back for a message it could not decode.
import {
  OFP_HEADER_LEN,
  OFPBAC,
  OFPBIC,
  OFPBMC,
  OFPBRC,
  OFPET,
  OFPHFC,
  OFPT,
} from '../constants';
import type { OfDecodeError } from '../errors';
import type { ErrorMsg } from './basic';

/** The spec asks for at least the first 64 bytes of the offending request. */
export const ERROR_DATA_MAX_LEN = 64;

/** OFPFMFC_BAD_COMMAND: the only out-of-domain value a flow_mod decode reports is its command. */
const OFPFMFC_BAD_COMMAND = 6;
/** offsets of the multipart type and experimenter id / exp_type fields, counted from the message start */
const MULTIPART_TYPE_OFFSET = OFP_HEADER_LEN;
const EXPERIMENTER_ID_OFFSET = OFP_HEADER_LEN;
const EXPERIMENTER_EXP_TYPE_OFFSET = OFP_HEADER_LEN + 4;

/** (OFPET, code) for a decode failure, from its kind and where it happened. */
function errorCodeFor(err: OfDecodeError): [OFPET, number] {
  const { msgType, offset } = err.context;
  switch (err.kind) {
    case 'bad_version':
      return [OFPET.BAD_REQUEST, OFPBRC.BAD_VERSION];
    case 'truncated':
    case 'bad_length':
      return [OFPET.BAD_REQUEST, OFPBRC.BAD_LEN];
    case 'unknown_type':
      if ((msgType === OFPT.MULTIPART_REQUEST || msgType === OFPT.MULTIPART_REPLY) && offset === MULTIPART_TYPE_OFFSET) {
        return [OFPET.BAD_REQUEST, OFPBRC.BAD_MULTIPART];
      }
      if (msgType === OFPT.EXPERIMENTER && offset === EXPERIMENTER_ID_OFFSET) return [OFPET.BAD_REQUEST, OFPBRC.BAD_EXPERIMENTER];
      if (msgType === OFPT.EXPERIMENTER && offset === EXPERIMENTER_EXP_TYPE_OFFSET) return [OFPET.BAD_REQUEST, OFPBRC.BAD_EXP_TYPE];
      return [OFPET.BAD_REQUEST, OFPBRC.BAD_TYPE];
    // Unknown OXM fields decode as raw values, so a bad OXM is malformed: mostly a length problem.
    case 'bad_oxm':
      return [OFPET.BAD_MATCH, OFPBMC.BAD_LEN];
    // Action and instruction decoders report lengths as bad_length; what remains is mostly an unknown type.
    case 'bad_action':
      return [OFPET.BAD_ACTION, OFPBAC.BAD_TYPE];
    case 'bad_instruction':
      return [OFPET.BAD_INSTRUCTION, OFPBIC.UNKNOWN_INST];
    case 'bad_value':
      if (msgType === OFPT.FLOW_MOD) return [OFPET.FLOW_MOD_FAILED, OFPFMFC_BAD_COMMAND];
      // No generic "bad value" code exists; an enumerated field out of its domain is an unsupported type.
      return [OFPET.BAD_REQUEST, OFPBRC.BAD_TYPE];
  }
}

/**
 * The error to send back for `offending`, a message that failed to decode with `err`.
 * The caller must not answer an OFPT_ERROR with an error, so that two peers cannot loop.
 */
export function errorReplyFor(err: OfDecodeError, offending: Buffer): ErrorMsg {
  const [errType, code] = errorCodeFor(err);
  const xid = err.context.xid ?? (offending.length >= OFP_HEADER_LEN ? offending.readUInt32BE(4) : 0);
  return { type: 'ERROR', xid, errType, code, data: Buffer.from(offending.subarray(0, ERROR_DATA_MAX_LEN)) };
}

/** OFPET_HELLO_FAILED/INCOMPATIBLE with a human-readable reason, as the spec asks. */
export function helloFailed(xid: number, text: string): ErrorMsg {
  return { type: 'ERROR', xid, errType: OFPET.HELLO_FAILED, code: OFPHFC.INCOMPATIBLE, data: Buffer.from(text, 'ascii') };
}
