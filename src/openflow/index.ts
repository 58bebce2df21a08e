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
