/** zonemesh OpenFlow 1.3 codec: pure encode/decode, no I/O. */
import { registerCodecs } from './codec';
import { basicCodecs } from './messages/basic';
import { flowCodecs } from './messages/flow';
import { groupMeterQueueCodecs } from './messages/group-meter-queue';
import { multipartCodecs } from './messages/multipart';

registerCodecs([...basicCodecs, ...flowCodecs, ...multipartCodecs, ...groupMeterQueueCodecs]);

export * from './constants';
export * from './errors';
export * from './codec';
export * from './framer';
export * from './message';
export * from './oxm';
export * from './actions';
// from the index, not through actions.ts: re-exports made its module object a slow dictionary
export {
  NXAST,
  NX_ACTION_SAMPLE_DEFAULT,
  NX_ACTION_SAMPLE_EGRESS,
  NX_ACTION_SAMPLE_INGRESS,
  NX_CT_F_COMMIT,
  NX_CT_F_FORCE,
  NX_CT_RECIRC_NONE,
  NX_LEARN_F_DELETE_LEARNED,
  NX_LEARN_F_SEND_FLOW_REM,
  NX_NAT_F_DST,
  NX_NAT_F_PERSISTENT,
  NX_NAT_F_PROTO_HASH,
  NX_NAT_F_PROTO_RANDOM,
  NX_NAT_F_SRC,
  type LearnSource,
  type LearnSpec,
  type NiciraAction,
} from './nicira';
export * from './instructions';
export * from './port';
export * from './addr';
export * from './messages/basic';
export * from './messages/flow';
export * from './messages/multipart';
export * from './messages/group-meter-queue';
export { Reader, Writer } from './wire';
export * from './messages/bundle';
export * from './messages/error-reply';
export * from './text/messages';
export * from './text/match';
export * from './text/actions';
