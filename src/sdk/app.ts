import type { Logger } from 'pino';
import type { Observable } from 'rxjs';
import type { OfMessage } from '../openflow';
import type { FlowRemovedEvent, PortStatusEvent, SwitchDownEvent, SwitchUpEvent } from '../controller/events';
import type { PacketOutOptions } from './actions';
import type { EventCounter, FlowCounter } from './counters';
import type { Flow, FlowBuilder } from './flow';
import type { Group } from './group';
import type { ModelAccess } from './model';
import type { PacketIn } from './packet-in';
import type { Pipeline, TableSpec } from './pipeline';
import type { Placement } from './placement';

/**
 * An app: a named set of tables plus the logic that fills them. Apps are inversify classes
 * (bound under APP), so one app can depend on another through a DI token.
 */
export interface ZonemeshApp {
  /** config name, e.g. 'l2-learning' */
  readonly name: string;
  /** 2..255, stable: it is the top byte of every cookie the app writes (1 is the pipeline's own) */
  readonly appId: number;
  /** tables the app owns; ids are assigned when the pipeline is realized */
  readonly tables: readonly TableSpec[];
  /** flows whose packet counters are metrics (drops, ACL rule hits), read when the controller serves metrics */
  readonly flowCounters?: readonly FlowCounter[];
  /** what the app counts itself (packet-ins answered or ignored, by reason), served when the controller serves metrics */
  readonly eventCounters?: readonly EventCounter[];
  /** Called once, after the pipeline is realized. Subscriptions end when `ctx.stopped$` emits. */
  start(ctx: AppContext): void;
}

/** The events every app can subscribe to; filter one switch with `forSwitch(dpid)`. */
export interface AppEvents {
  readonly switchUp$: Observable<SwitchUpEvent>;
  readonly switchDown$: Observable<SwitchDownEvent>;
  readonly packetIn$: Observable<PacketIn>;
  readonly portStatus$: Observable<PortStatusEvent>;
  readonly flowRemoved$: Observable<FlowRemovedEvent>;
}

/** What the runtime gives an app: the realized pipeline, events, desired state and a reactive send. */
export interface AppContext {
  readonly app: ZonemeshApp;
  readonly pipeline: Pipeline;
  readonly log: Logger;
  readonly events: AppEvents;
  readonly stopped$: Observable<void>;
  /** the app's cookie for an owner object ('port:web1', 'mac:02:..') */
  cookie(owner: string, opts?: { ephemeral?: boolean }): bigint;
  /** a flow builder for one of the pipeline's tables, carrying this app's cookie for `owner` */
  flow(table: string, owner: string, opts?: { ephemeral?: boolean }): FlowBuilder;
  /**
   * Desired state: the flows `owner` wants on `dpid`, replacing what it wanted before.
   * The runtime diffs and sends only the difference, now if the switch is up, else on connect.
   */
  setFlows(dpid: bigint, owner: string, flows: readonly Flow[]): void;
  /**
   * The id of this app's group for `key` ('vip:blue/10.1.1.100:tcp:80'): the app id in the top byte,
   * a stable hash of the key below, so apps never share a group id and restarts find theirs again.
   */
  groupId(key: string): number;
  /**
   * Desired state: the groups `owner` wants on `dpid` (ids from `groupId`), replacing what it wanted
   * before. Reconciled like flows; a group is added before the flows that reference it and deleted after.
   */
  setGroups(dpid: bigint, owner: string, groups: readonly Group[]): void;
  /**
   * Reactive path (learned flows, packet-outs): sent now, not reconciled; dropped (and logged) when
   * the switch is down or its send buffer is full. Returns false when the message was dropped or the
   * switch's queue is above its high-water mark: a reactive app should then shed optional work
   * (floods, refreshes) until sends return true again.
   */
  send(dpid: bigint, msg: OfMessage): boolean;
  /**
   * Resolves once nothing set for `dpid` (flows, groups) is still being sent: what the app set before
   * the call is on the switch, or its sync failed and the switch is re-read later. For a message that
   * must follow a change, as a conntrack flush follows the group change that stops new connections.
   */
  settled(dpid: bigint): Promise<void>;
  /** Sends `frame` (a whole Ethernet frame) out of port `to` of switch `dpid`, as `send` does. */
  packetOut(dpid: bigint, frame: Buffer, options: PacketOutOptions): boolean;
  /**
   * The network model and lookups into it. Reading it when the run config names no model (neither
   * `model:` nor `store:`) throws ModelNotConfiguredError, so an app that needs one fails at start.
   */
  readonly model: ModelAccess;
  /** where the model's hypervisors and ports are on the switches: dpid ↔ hypervisor, port ↔ ofport */
  readonly placement: Placement;
  /**
   * Runs `handler` for every event of `source` until the app stops. An exception in the handler is
   * logged with the app, switch and event type, and the subscription goes on.
   */
  on<T>(source: Observable<T>, handler: (event: T) => void): void;
}

/** DI token under which every enabled app is bound (multi-inject). */
export const APP = Symbol.for('zonemesh.app');
/** DI token of the runtime's pino Logger (apps get a child logger as `ctx.log`). */
export const LOGGER = Symbol.for('zonemesh.logger');
/** DI token of the ModelStore, bound when the run config names a model file. */
export const MODEL_STORE = Symbol.for('zonemesh.model-store');
/** DI token of the run config's `settings`: app name → that app's own settings, unvalidated. */
export const APP_SETTINGS = Symbol.for('zonemesh.app-settings');
/**
 * DI token of an `Observable<AppSettings>`: the run config's settings each time they change while the
 * controller runs (`zonemesh run --config FILE` watches FILE). It never emits when nothing is watched.
 * An app that can apply new settings live subscribes with `ctx.on` in `start()`; the rest keep the
 * settings they were constructed with.
 */
export const APP_SETTINGS_CHANGES = Symbol.for('zonemesh.app-settings-changes');
export type AppSettings = Readonly<Record<string, unknown>>;
