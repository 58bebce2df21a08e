import type { Action, Bucket, GroupDesc, GroupMod, GroupModCommand, GroupType } from '../openflow';
import { OFPG_ANY, OFPP } from '../openflow/constants';
import { ownerHash } from './cookie';
import { sameInstructions } from './diff';

/**
 * A desired group: plain data like a Flow. Its id says who owns it: the top byte is the app id (as
 * in a cookie), the low 24 bits a hash of the app's key for it (`groupIdOf`), so groups of two apps
 * never share an id and an app finds its own groups again after a restart.
 */
export interface Group {
  groupId: number;
  groupType: GroupType;
  buckets: Bucket[];
}

export const GROUP_APP_SHIFT = 24;
/** low 24 bits below 0xffff00: app 255's ids then stay below OFPG_MAX (0xffffff00), the reserved ids */
const GROUP_LOCAL_IDS = 0xffff00n;

/** The group id app `appId` uses for `key` ('vip:blue/10.1.1.100:tcp:80'): stable across restarts and processes. */
export function groupIdOf(appId: number, key: string): number {
  if (!Number.isInteger(appId) || appId < 2 || appId > 255) throw new RangeError(`app id ${appId} outside 2..255`);
  return appId * 2 ** GROUP_APP_SHIFT + Number(ownerHash(key) % GROUP_LOCAL_IDS);
}

export function appOfGroup(groupId: number): number {
  return Math.floor(groupId / 2 ** GROUP_APP_SHIFT);
}

/** A bucket with the fields select and all groups leave unused (watch port and group) at their "any" value. */
export function bucket(actions: Action[], weight = 0): Bucket {
  return { weight, watchPort: OFPP.ANY, watchGroup: OFPG_ANY, actions };
}

/** The GROUP_MOD that adds, modifies or deletes `g` (a delete carries no buckets). */
export function groupMod(command: GroupModCommand, g: Group): GroupMod {
  return { type: 'GROUP_MOD', xid: 0, command, groupType: g.groupType, groupId: g.groupId, buckets: command === 'delete' ? [] : g.buckets };
}

/** Same buckets in the same order; actions compared as the switch reports them (see sameInstructions). */
export function sameBuckets(a: readonly Bucket[], b: readonly Bucket[]): boolean {
  return (
    a.length === b.length &&
    a.every((x, i) => {
      const y = b[i]!;
      return x.weight === y.weight && x.watchPort === y.watchPort && x.watchGroup === y.watchGroup && sameInstructions([{ type: 'apply_actions', actions: x.actions }], [{ type: 'apply_actions', actions: y.actions }]);
    })
  );
}

export interface GroupDiff {
  /** missing groups: sent before the flows that may reference them */
  adds: GroupMod[];
  /** type or buckets changed: modified in place, so flows that reference them stay */
  modifies: GroupMod[];
  /** groups of ours that nothing desires: sent after the flows that referenced them are gone */
  deletes: GroupMod[];
  /** two desired groups with one id (two keys hashed alike, or one id set by two owners): the later is sent */
  conflicts: GroupConflict[];
}

export interface GroupConflict {
  readonly earlier: Group;
  readonly later: Group;
}

/** Diff desired groups against installed ones; installed groups whose id is not of an app in `ownedApps` are left alone. */
export function diffGroups(desired: readonly Group[], installed: readonly GroupDesc[], ownedApps: ReadonlySet<number>): GroupDiff {
  const want = new Map<number, Group>();
  const conflicts: GroupConflict[] = [];
  for (const g of desired) {
    const earlier = want.get(g.groupId);
    if (earlier && !(earlier.groupType === g.groupType && sameBuckets(earlier.buckets, g.buckets))) conflicts.push({ earlier, later: g });
    want.set(g.groupId, g);
  }
  const diff: GroupDiff = { adds: [], modifies: [], deletes: [], conflicts };
  const present = new Set<number>();
  for (const g of installed) {
    const d = want.get(g.groupId);
    if (d) {
      present.add(g.groupId);
      if (d.groupType !== g.groupType || !sameBuckets(d.buckets, g.buckets)) diff.modifies.push(groupMod('modify', d));
    } else if (ownedApps.has(appOfGroup(g.groupId))) {
      diff.deletes.push(groupMod('delete', g));
    }
  }
  for (const [id, d] of want) if (!present.has(id)) diff.adds.push(groupMod('add', d));
  return diff;
}
