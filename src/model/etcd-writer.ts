/**
 * Reads and writes of one model object in etcd (docs/etcd-store.md, docs/api.md): what the
 * northbound API does. A write is validated against the model a watch keeps (ModelWriter below),
 * with only what the change can affect, and committed in one transaction that compares the
 * object's mod_revision with the one the client read and `current`'s mod_revision with the one the
 * validated model is at. Every write puts `current` again (same value), so `current`'s mod_revision
 * moves with every write and the compare catches any write the validation did not see.
 *
 * A commit whose answer is lost (the connection breaks after etcd applied it; the etcd3 package then
 * sends the transaction again, whose compare now fails) is found again by its mark: every write also
 * puts a random id at WRITE_MARK_KEY, and the first revision after the compared one that moved
 * `current` is the only one the write can have committed at (see landedAt).
 */
import { randomBytes } from 'node:crypto';
import type { Etcd3, ICompare, IRequestOp } from 'etcd3';
import { documentOf } from './document';
import { prefixEnd, reasonOf } from './etcd-client';
import { CURRENT_KEY, WRITE_MARK_KEY, atPlaces, entriesOf, generationPrefix, parseStoredValue } from './etcd-layout';
import { storedValueOf } from './etcd-model';
import { EtcdModelStore } from './etcd-store';
import { newGenerationId } from './etcd-transfer';
import { type ModelIssue, ModelValidationError } from './errors';
import type { NetworkModel } from './types';
import { validateModel } from './validate';

/**
 * One object of the layout: a zone, hypervisor, VPC, port or external network by name, a floating IP
 * by its address (as `name`), a subnet or load balancer by VPC and name, a VPC's ordered ACL list by VPC.
 */
export type ObjectRef =
  | { readonly kind: 'zones' | 'hypervisors' | 'vpcs' | 'ports' | 'externalNetworks' | 'floatingIps'; readonly name: string }
  | { readonly kind: 'subnets' | 'loadBalancers'; readonly vpc: string; readonly name: string }
  | { readonly kind: 'acls'; readonly vpc: string };
export type { ObjectKind } from './etcd-layout';

/** An object as stored, with its etcd mod_revision (0: no key; a VPC's empty ACL list has none). */
export interface StoredObject {
  readonly value: unknown;
  readonly revision: number;
}

/** How an object is named in problems, and in the API's paths (under /v1/): `ports/web1`, `vpcs/prod/subnets/web`, `vpcs/prod/acls`. */
export function objectPath(ref: ObjectRef): string {
  if (ref.kind === 'subnets' || ref.kind === 'loadBalancers') return `vpcs/${ref.vpc}/${ref.kind}/${ref.name}`;
  if (ref.kind === 'acls') return `vpcs/${ref.vpc}/acls`;
  return `${ref.kind}/${ref.name}`;
}

const seg = encodeURIComponent;

/** the object's key below its generation's prefix, as entriesOf writes it */
function keyOf(ref: ObjectRef): string {
  if (ref.kind === 'subnets' || ref.kind === 'loadBalancers') return `${ref.kind}/${seg(ref.vpc)}/${seg(ref.name)}`;
  if (ref.kind === 'acls') return `acls/${seg(ref.vpc)}`;
  return `${ref.kind}/${seg(ref.name)}`;
}

/** the VPC an object lives in, when it is a subnet, a load balancer or an ACL list */
const parentOf = (ref: ObjectRef): { kind: 'vpcs'; name: string } | undefined => ('vpc' in ref ? { kind: 'vpcs', name: ref.vpc } : undefined);

/** The object (or the VPC it lives in) does not exist. */
export class ObjectNotFoundError extends Error {
  override readonly name = 'ObjectNotFoundError';
  constructor(readonly path: string) {
    super(`no ${path}`);
  }
}

/** The client's revision of the object is not the stored one: someone changed (or created, or deleted) it since. */
export class RevisionConflictError extends Error {
  override readonly name = 'RevisionConflictError';
  constructor(
    readonly path: string,
    readonly expected: number,
    /** the object's mod_revision now; 0 when it does not exist */
    readonly current: number,
  ) {
    super(
      expected === 0
        ? `${path} exists (revision ${current})`
        : `${path} is at revision ${current === 0 ? '0 (deleted)' : current}, not ${expected}: read it again and apply the change to what is there now`,
    );
  }
}

/** The model in etcd does not validate as stored, so no change of it can be checked. */
export class StoredModelInvalidError extends Error {
  override readonly name = 'StoredModelInvalidError';
  constructor(readonly issues: readonly ModelIssue[]) {
    super(`the model in etcd is invalid (${issues.length} problem(s)); fix it, e.g. with zonemesh model import`);
  }
}

/** etcd's answer to a commit was lost and whether it went through could not be read back either. */
export class WriteOutcomeUnknownError extends Error {
  override readonly name = 'WriteOutcomeUnknownError';
  constructor(
    readonly path: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`etcd's answer to the write of ${path} was lost (${reason}) and etcd could not be asked whether it went through: read ${path} (its revision tells)`, options);
  }
}

/** Other writes changed the model every time this one was about to commit. */
export class ModelContentionError extends Error {
  override readonly name = 'ModelContentionError';
}

/** etcd did not answer a read or write in time (no quorum, unreachable, or the deadline passed). */
export class EtcdRequestError extends Error {
  override readonly name = 'EtcdRequestError';
  constructor(reason: string, options?: ErrorOptions) {
    super(`etcd did not answer: ${reason}`, options);
  }
}

/** The source named in the ModelValidationError of a refused write. */
export const WRITE_SOURCE = 'request';

/** Commit attempts when other writes keep changing the model in between. */
const ATTEMPTS = 5;

async function etcd<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (e) {
    throw new EtcdRequestError(reasonOf(e), { cause: e });
  }
}

const msLeft = (deadline: Date): number => Math.max(1, deadline.getTime() - Date.now());

function parsed(key: string, bytes: Buffer): unknown {
  const v = parseStoredValue(bytes);
  if ('syntaxError' in v) throw new StoredModelInvalidError([{ path: key, problem: `not JSON: ${v.syntaxError}` }]);
  return v.json;
}

/** The generation in force and the revision it was read at. */
async function generationAt(client: Etcd3, deadline: Date): Promise<{ generation: string | undefined; revision: number }> {
  const res = await etcd(client.kv.range({ key: Buffer.from(CURRENT_KEY) }, { deadline }));
  return { generation: res.kvs[0]?.value.toString().trim() || undefined, revision: Number(res.header.revision) };
}

async function rangeAt(client: Etcd3, key: string, revision: number, deadline: Date, prefix = false) {
  return (await etcd(client.kv.range({ key: Buffer.from(key), revision, ...(prefix && { range_end: prefixEnd(key) }) }, { deadline }))).kvs;
}

/** One object, or undefined when it (or its VPC) does not exist; a VPC without ACL key has the empty list at revision 0. */
export async function readObject(client: Etcd3, ref: ObjectRef, deadline: Date): Promise<{ object?: StoredObject; storeRevision: number }> {
  const { generation, revision } = await generationAt(client, deadline);
  if (generation === undefined) return { storeRevision: revision };
  const g = generationPrefix(generation);
  const parent = parentOf(ref);
  if (parent && (await rangeAt(client, g + keyOf(parent), revision, deadline)).length === 0) return { storeRevision: revision };
  const kv = (await rangeAt(client, g + keyOf(ref), revision, deadline))[0];
  if (kv) return { object: { value: parsed(kv.key.toString(), kv.value), revision: Number(kv.mod_revision) }, storeRevision: revision };
  return { ...(ref.kind === 'acls' && { object: { value: [], revision: 0 } }), storeRevision: revision };
}

/** Every object of a kind (a VPC's subnets or load balancers when `vpc` is given), in name order; undefined when that VPC does not exist. */
export async function listObjects(
  client: Etcd3,
  kind: Exclude<ObjectRef['kind'], 'acls'>,
  vpc: string | undefined,
  deadline: Date,
): Promise<{ objects?: StoredObject[]; storeRevision: number }> {
  const { generation, revision } = await generationAt(client, deadline);
  if (generation === undefined) return { ...(vpc === undefined && { objects: [] }), storeRevision: revision };
  const g = generationPrefix(generation);
  if (vpc !== undefined && (await rangeAt(client, g + keyOf({ kind: 'vpcs', name: vpc }), revision, deadline)).length === 0) return { storeRevision: revision };
  const kvs = await rangeAt(client, `${g}${kind}/${vpc === undefined ? '' : `${seg(vpc)}/`}`, revision, deadline, true);
  return { objects: kvs.map((kv) => ({ value: parsed(kv.key.toString(), kv.value), revision: Number(kv.mod_revision) })), storeRevision: revision };
}

/**
 * A change of one object: `value` replaces it (the object as a model file has it; an ACL list is
 * the list of rules), none deletes it. `revision` is the object's mod_revision the client read: 0
 * creates, and fails when the object exists.
 */
export interface ObjectWrite {
  readonly ref: ObjectRef;
  readonly revision: number;
  readonly value?: unknown;
}

/**
 * Writes of single objects, each validated against the model an EtcdModelStore keeps on the
 * client's watch (opened by open() or the first write) rather than against a read of the whole model: the
 * change is checked with what it can affect (etcd-model.ts), and committed in one transaction that
 * compares `current`'s mod_revision with the one the store's model is at (every write and import
 * moves it) and the object's with the client's. A transaction that loses, and a refusal (409, 404,
 * 422) decided on a store that may lag, are tried again once the store has caught up with etcd.
 */
export class ModelWriter {
  private store: Promise<EtcdModelStore> | undefined;
  /** the revision of the last write committed here: the store reaches it before the next is checked */
  private written = 0;

  constructor(private readonly client: Etcd3) {}

  /**
   * Applies a change and commits it when the resulting model is valid. Throws ModelValidationError
   * (source WRITE_SOURCE; problems of the object itself at its field, `ip`, and of others at their
   * path, `ports/web2: mac`), RevisionConflictError, ObjectNotFoundError, StoredModelInvalidError,
   * ModelContentionError or EtcdRequestError; nothing is written then.
   */
  async write(write: ObjectWrite, deadline: Date): Promise<{ object?: StoredObject; storeRevision: number }> {
    const { ref } = write;
    const path = objectPath(ref);
    const store = await this.opened(deadline);
    await reach(store, this.written, deadline);
    let caughtUp = false;
    const catchUp = async () => {
      await this.catchUp(store, ref, deadline);
      caughtUp = true;
    };
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const keys = store.keys;
      /** a refusal stands once the store has caught up with etcd; until then it is checked again */
      const refuse = async (e: Error) => {
        if (caughtUp) throw e;
        await catchUp();
      };
      if (keys.problems) {
        await refuse(new StoredModelInvalidError(keys.problems.issues));
        continue;
      }
      const model = keys.model;
      const generation = keys.generation ?? newGenerationId();
      const g = generationPrefix(generation);
      const parent = parentOf(ref);
      const stored = keys.modRevision(keyOf(ref));
      if (parent && !model.vpcs.some((v) => v.name === parent.name)) await refuse(new ObjectNotFoundError(objectPath(parent)));
      else if (write.revision !== stored) await refuse(stored === 0 && ref.kind !== 'acls' ? new ObjectNotFoundError(path) : new RevisionConflictError(path, write.revision, stored));
      else if (write.value === undefined && stored === 0) await refuse(new ObjectNotFoundError(path));
      else {
        const values = new Map<string, unknown>([[keyOf(ref), write.value]]);
        // a VPC goes with its (then empty) ACL list
        const acls = keyOf({ kind: 'acls', vpc: ref.kind === 'vpcs' ? ref.name : '' });
        if (ref.kind === 'vpcs' && write.value === undefined) values.set(acls, undefined);
        const checked = keys.check(values);
        let value: string | undefined;
        if (checked) {
          const object = checked.get(keyOf(ref));
          const json = object && storedValueOf(object);
          value = json === undefined ? undefined : JSON.stringify(json);
        } else if (!caughtUp) {
          await catchUp();
          continue;
        } else {
          // the problems as a whole-model validation names them, the written object last (and, should the two ever disagree, it decides)
          value = entriesOf(validated(model, ref, write.value), generation).get(g + keyOf(ref));
        }
        const ops: IRequestOp[] = [];
        if (value !== undefined) ops.push({ request_put: { key: Buffer.from(g + keyOf(ref)), value: Buffer.from(value) } });
        else if (stored !== 0) ops.push({ request_delete_range: { key: Buffer.from(g + keyOf(ref)) } });
        if (values.has(acls) && keys.modRevision(acls) !== 0) ops.push({ request_delete_range: { key: Buffer.from(g + acls) } });
        ops.push({ request_put: { key: Buffer.from(CURRENT_KEY), value: Buffer.from(generation) } });
        const mark = randomBytes(8).toString('hex');
        ops.push({ request_put: { key: Buffer.from(WRITE_MARK_KEY), value: Buffer.from(mark) } });
        const compare: ICompare[] = [
          { key: Buffer.from(CURRENT_KEY), target: 'Mod', result: 'Equal', mod_revision: keys.generationRevision },
          { key: Buffer.from(g + keyOf(ref)), target: 'Mod', result: 'Equal', mod_revision: stored },
        ];
        const revision = await this.commit({ compare, success: ops }, mark, keys.generationRevision, path, deadline);
        if (revision !== undefined) {
          this.written = Math.max(this.written, revision);
          if (value !== undefined) return { object: { value: JSON.parse(value), revision }, storeRevision: revision };
          return { ...(ref.kind === 'acls' && { object: { value: [], revision: 0 } }), storeRevision: revision };
        }
        // lost: something was written since the store's model; check again on what is there now
        await catchUp();
      }
    }
    throw new ModelContentionError(`other writes changed the model ${ATTEMPTS} times while ${path} was being written; try again`);
  }

  /**
   * The revision a transaction committed at, or undefined when it did not. A lost answer, or a
   * failed compare (a resend of a transaction that went through fails it), is looked up by its mark.
   */
  private async commit(txn: { compare: ICompare[]; success: IRequestOp[] }, mark: string, after: number, path: string, deadline: Date): Promise<number | undefined> {
    let res;
    try {
      res = await this.client.kv.txn(txn, { deadline });
    } catch (e) {
      if (NEVER_SENT.test(reasonOf(e))) throw new EtcdRequestError(reasonOf(e), { cause: e });
      const landed = await landedAt(this.client, mark, after, deadline).catch((lookup: unknown) => {
        throw new WriteOutcomeUnknownError(path, reasonOf(e), { cause: lookup });
      });
      if (landed === undefined) throw new EtcdRequestError(reasonOf(e), { cause: e });
      return landed;
    }
    if (res.succeeded) return Number(res.header.revision);
    return etcd(landedAt(this.client, mark, after, deadline));
  }

  /**
   * Opens the store the writes are checked against (a full read, as a controller's at start), if
   * it is not open or opening; a failed open is tried again at the next write.
   */
  open(): Promise<EtcdModelStore> {
    this.store ??= EtcdModelStore.follow(this.client, []).catch((e: unknown) => {
      this.store = undefined;
      if (e instanceof ModelValidationError) throw new StoredModelInvalidError(e.issues);
      throw new EtcdRequestError(reasonOf(e), { cause: e });
    });
    return this.store;
  }

  /** The store, as soon as it is open and at the latest by the deadline. */
  private async opened(deadline: Date): Promise<EtcdModelStore> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new EtcdRequestError('the model is still being read')), msLeft(deadline));
    });
    try {
      return await Promise.race([this.open(), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Brings the store to etcd's last write of the model and of the object: the mod_revisions of
   * `current` (which every write and import moves) and of the object's key, read in one request.
   */
  private async catchUp(store: EtcdModelStore, ref: ObjectRef, deadline: Date): Promise<void> {
    const generation = store.keys.generation;
    const keys = [CURRENT_KEY, ...(generation === undefined ? [] : [generationPrefix(generation) + keyOf(ref)])];
    const res = await etcd(this.client.kv.txn({ success: keys.map((key) => ({ request_range: { key: Buffer.from(key) } })) }, { deadline }));
    const revisions = res.responses.map((r) => Number(r.response_range?.kvs[0]?.mod_revision ?? 0));
    await reach(store, Math.max(...revisions), deadline);
  }

  async close(): Promise<void> {
    const store = await this.store?.catch(() => undefined);
    this.store = undefined;
    await store?.close();
  }
}

/** errors of a request that never left this process (an open circuit breaker) or was refused a connection */
const NEVER_SENT = /circuit breaker is open|ECONNREFUSED/i;

/**
 * The revision a write marked `mark`, whose transaction compared `current`'s mod_revision with
 * `after`, committed at; undefined when it did not commit. Such a transaction can only commit while
 * `current` is still at `after`, and it moves `current`: so it committed exactly when the first
 * revision after `after` that moved `current` carries its mark. That revision is found by bisection
 * over past revisions (a few reads; none when nothing was written since).
 */
async function landedAt(client: Etcd3, mark: string, after: number, deadline: Date): Promise<number | undefined> {
  const at = async (key: string, revision?: number) => {
    const res = await client.kv.range({ key: Buffer.from(key), ...(revision !== undefined && { revision }) }, { deadline });
    return { kv: res.kvs[0], head: Number(res.header.revision) };
  };
  const latest = await at(WRITE_MARK_KEY);
  if (latest.kv?.value.toString() === mark) return Number(latest.kv.mod_revision);
  const movedAt = async (revision: number) => Number((await at(CURRENT_KEY, revision)).kv?.mod_revision ?? 0);
  let [lo, hi] = [after + 1, latest.head];
  if (lo > hi || (await movedAt(hi)) <= after) return undefined;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if ((await movedAt(mid)) > after) hi = mid;
    else lo = mid + 1;
  }
  return (await at(WRITE_MARK_KEY, lo)).kv?.value.toString() === mark ? lo : undefined;
}

async function reach(store: EtcdModelStore, revision: number, deadline: Date): Promise<void> {
  if (!(await store.reached(revision, msLeft(deadline)))) throw new EtcdRequestError(`the model's watch did not reach revision ${revision} in time`);
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The model with the change applied, validated whole. The written object goes last in its list, so
 * that a duplicate (name, MAC, IP, tunnel IP ...) is reported at it rather than at the object it
 * collides with.
 */
function validated(model: NetworkModel, ref: ObjectRef, value: unknown): NetworkModel {
  const own = objectPath(ref);
  const issues: ModelIssue[] = [];
  const { externalNetworks = [], floatingIps = [], ...rest } = documentOf(model);
  const doc = { ...rest, externalNetworks, floatingIps } as unknown as Record<'zones' | 'hypervisors' | 'vpcs' | 'ports' | 'externalNetworks' | 'floatingIps', Obj[]>;
  /** a floating IP's name is its address */
  const field = ref.kind === 'floatingIps' ? 'ip' : 'name';
  const named = (name: string): Obj => {
    if (!isObj(value)) return value as Obj; // validateModel says what it should be
    if (value[field] !== undefined && value[field] !== name) issues.push({ path: field, problem: `${JSON.stringify(value[field])} is not the ${field} in the path, '${name}'` });
    return { ...value, [field]: name };
  };
  const vpcOf = (name: string) => doc.vpcs.find((v) => v.name === name)!;
  switch (ref.kind) {
    case 'zones':
    case 'hypervisors':
    case 'ports':
    case 'externalNetworks':
    case 'floatingIps': {
      const list = doc[ref.kind].filter((o) => o[field] !== ref.name);
      doc[ref.kind] = value === undefined ? list : [...list, named(ref.name)];
      break;
    }
    case 'vpcs': {
      const existing = doc.vpcs.find((v) => v.name === ref.name);
      const subnets = (existing?.subnets as Obj[] | undefined) ?? [];
      const loadBalancers = (existing?.loadBalancers as Obj[] | undefined) ?? [];
      doc.vpcs = doc.vpcs.filter((v) => v !== existing);
      if (value === undefined) {
        for (const [key, list] of [['subnets', subnets], ['loadBalancers', loadBalancers]] as const) {
          if (list.length) issues.push({ path: key, problem: `VPC ${ref.name} still has ${key} ${list.map((s) => s.name).join(', ')}: delete them first` });
        }
        break;
      }
      for (const key of ['subnets', 'acls', 'loadBalancers']) {
        if (isObj(value) && key in value) issues.push({ path: key, problem: `${key} are objects of their own (vpcs/${ref.name}/${key}), not part of the VPC` });
      }
      doc.vpcs.push({ ...named(ref.name), subnets, ...(existing?.acls !== undefined && { acls: existing.acls }), ...(loadBalancers.length && { loadBalancers }) });
      break;
    }
    case 'subnets':
    case 'loadBalancers': {
      const vpc = vpcOf(ref.vpc);
      const list = ((vpc[ref.kind] as Obj[] | undefined) ?? []).filter((s) => s.name !== ref.name);
      vpc[ref.kind] = value === undefined ? list : [...list, named(ref.name)];
      break;
    }
    case 'acls': {
      const vpc = vpcOf(ref.vpc);
      if (value === undefined) delete vpc.acls;
      else vpc.acls = value;
      break;
    }
  }
  if (issues.length) throw new ModelValidationError(WRITE_SOURCE, issues);
  try {
    return validateModel(doc, WRITE_SOURCE);
  } catch (e) {
    if (!(e instanceof ModelValidationError)) throw e;
    const places = placesOf(doc);
    const relative = (p: string) => (p === own ? '(the object)' : p.startsWith(`${own}: `) ? p.slice(own.length + 2) : p.startsWith(`${own}[`) ? p.slice(own.length).replace(': ', '.') : p);
    throw new ModelValidationError(
      WRITE_SOURCE,
      e.issues.map((i) => ({ path: relative(atPlaces(i.path, places)), problem: atPlaces(i.problem, places) })),
    );
  }
}

/** document path of every object (`ports[3]`, `vpcs[0].subnets[1]`, `vpcs[0].acls`) → its objectPath */
function placesOf(doc: Record<'zones' | 'hypervisors' | 'vpcs' | 'ports' | 'externalNetworks' | 'floatingIps', Obj[]>): Map<string, string> {
  const places = new Map<string, string>();
  for (const kind of ['zones', 'hypervisors', 'ports', 'externalNetworks', 'floatingIps'] as const) doc[kind].forEach((o, i) => places.set(`${kind}[${i}]`, `${kind}/${String(kind === 'floatingIps' ? o?.ip : o?.name)}`));
  doc.vpcs.forEach((v, i) => {
    places.set(`vpcs[${i}]`, `vpcs/${String(v.name)}`);
    for (const kind of ['subnets', 'loadBalancers'] as const) ((v[kind] as Obj[] | undefined) ?? []).forEach((s, j) => places.set(`vpcs[${i}].${kind}[${j}]`, `vpcs/${String(v.name)}/${kind}/${String(s?.name)}`));
    if (v.acls !== undefined) places.set(`vpcs[${i}].acls`, `vpcs/${String(v.name)}/acls`);
  });
  return places;
}
