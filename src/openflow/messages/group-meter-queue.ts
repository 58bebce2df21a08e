// Owner: multipart helper (buckets, bands and queue properties are shared with multipart bodies).
import type { AnyMessageCodec } from '../codec';

// … helper adds GROUP_MOD, METER_MOD, QUEUE_GET_CONFIG_REQUEST, QUEUE_GET_CONFIG_REPLY
export type GroupMeterQueueMessage = never;

export const groupMeterQueueCodecs: readonly AnyMessageCodec[] = [];
