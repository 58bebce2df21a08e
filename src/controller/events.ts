import { Subject, filter, type MonoTypeOperatorFunction } from 'rxjs';
import type { FeaturesReply, FlowRemoved, OfMessage, PacketIn, Port, PortStatus, RoleStatus } from '../openflow';
import type { CloseReason, ControllerError } from './errors';
import type { RoleLossReason } from './role';
import type { SwitchSession } from './session';

/** Every per-switch event names its switch, so one operator filters them all. */
export interface SwitchEvent {
  readonly dpid: bigint;
  readonly session: SwitchSession;
}

export interface SwitchUpEvent extends SwitchEvent {
  readonly features: FeaturesReply;
  readonly ports: readonly Port[];
}

export interface SwitchDownEvent extends SwitchEvent {
  readonly reason: CloseReason;
  readonly error: Error | undefined;
}

export interface PacketInEvent extends SwitchEvent {
  readonly message: PacketIn;
}

export interface PortStatusEvent extends SwitchEvent {
  readonly message: PortStatus;
}

export interface FlowRemovedEvent extends SwitchEvent {
  readonly message: FlowRemoved;
}

/** The switch changed this connection's role (OVS: ONFT_ROLE_STATUS, when another controller became master). */
export interface RoleStatusEvent extends SwitchEvent {
  readonly message: RoleStatus;
}

/** This connection was master (or claimed it) and is not: stop writing. */
export interface RoleLostEvent extends SwitchEvent {
  readonly reason: RoleLossReason;
  /** the new master's generation, when the switch said it (role status) */
  readonly generationId: bigint | undefined;
}

/** A message no request awaited and no dedicated stream carries (late replies, experimenter messages). */
export interface OtherMessageEvent extends SwitchEvent {
  readonly message: OfMessage;
}

/** Keeps only the events of one switch: `controller.packetIn$.pipe(forSwitch(dpid))`. Works on errors$ too. */
export function forSwitch<T extends { readonly dpid?: bigint | undefined }>(dpid: bigint): MonoTypeOperatorFunction<T> {
  return filter((e) => e.dpid === dpid);
}

/** The subjects behind the controller's streams; sessions push into them. */
export class EventHub {
  readonly switchUp = new Subject<SwitchUpEvent>();
  readonly switchDown = new Subject<SwitchDownEvent>();
  readonly packetIn = new Subject<PacketInEvent>();
  readonly portStatus = new Subject<PortStatusEvent>();
  readonly flowRemoved = new Subject<FlowRemovedEvent>();
  readonly otherMessages = new Subject<OtherMessageEvent>();
  readonly errors = new Subject<ControllerError>();
  readonly roleStatus = new Subject<RoleStatusEvent>();
  readonly roleLost = new Subject<RoleLostEvent>();

  complete(): void {
    for (const s of [this.switchUp, this.switchDown, this.packetIn, this.portStatus, this.flowRemoved, this.otherMessages, this.errors, this.roleStatus, this.roleLost]) {
      s.complete();
    }
  }
}
