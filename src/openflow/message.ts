import type { BasicMessage } from './messages/basic';
import type { FlowMessage } from './messages/flow';
import type { GroupMeterQueueMessage } from './messages/group-meter-queue';
import type { MultipartMessage } from './messages/multipart';

/** Every OpenFlow 1.3 message, discriminated by `type` (the OFPT_* name without prefix). */
export type OfMessage = BasicMessage | FlowMessage | MultipartMessage | GroupMeterQueueMessage;
export type OfMessageType = OfMessage['type'];
export type OfMessageOf<T extends OfMessageType> = Extract<OfMessage, { type: T }>;
