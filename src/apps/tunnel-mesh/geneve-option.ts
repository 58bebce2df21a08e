import { ControllerError } from '../../controller/errors';
import type { SwitchSession } from '../../controller/session';
import { type TlvMapping, decodeTlvTableReply, tlvTableMod, tlvTableRequest } from '../../openflow';

/**
 * The Geneve option that carries the egress key (src/model/derived.ts): class 0xffff, from the
 * Experimental Use range of RFC 8926 (OVN registered 0x0102 for its own), type 0x80 (the critical
 * bit: an endpoint that does not know the option must drop the packet rather than deliver it by VNI
 * alone), 4 bytes. Every bridge maps it to tun_metadata0.
 */
export const EGRESS_KEY_OPTION: TlvMapping = { optionClass: 0xffff, optionType: 0x80, optionLength: 4, index: 0 };
export const EGRESS_KEY_FIELD = 'tun_metadata0';

/** The bridge maps tun_metadata0 or our option otherwise: someone else's mapping, not replaced. */
export class TlvMapError extends ControllerError {
  override readonly name = 'TlvMapError';
}

const describe = (m: TlvMapping) => `class=0x${m.optionClass.toString(16)},type=0x${m.optionType.toString(16)},len=${m.optionLength}->tun_metadata${m.index}`;

/**
 * Makes the bridge map the option before any flow uses it. OVS refuses to add a mapping for an
 * index already mapped, even the same one, so the table is read first; a missing mapping is added
 * and confirmed with a barrier. Sent on the switch's connection as soon as it is up: OVS handles a
 * connection's messages in order, and the reconciler's first flow-mod waits for a flow dump.
 */
export async function ensureEgressKeyOption(session: SwitchSession): Promise<'present' | 'added'> {
  const context = { dpid: session.dpid, msgType: 'EXPERIMENTER' as const, remote: session.remote };
  const table = decodeTlvTableReply(await session.request(tlvTableRequest(0)));
  if (table instanceof Error) throw table;
  const wanted = EGRESS_KEY_OPTION;
  const sameOption = (m: TlvMapping) => m.optionClass === wanted.optionClass && m.optionType === wanted.optionType;
  const ours = table.mappings.find((m) => sameOption(m) || m.index === wanted.index);
  if (ours && sameOption(ours) && ours.index === wanted.index && ours.optionLength === wanted.optionLength) return 'present';
  if (ours) throw new TlvMapError(`the bridge maps ${describe(ours)}; the overlay needs ${describe(wanted)}`, context);
  session.send(tlvTableMod(0, 'add', [wanted]));
  const { errors } = await session.barrier();
  if (errors.length > 0) throw new TlvMapError(`adding ${describe(wanted)} failed: ${errors.map((e) => e.message).join('; ')}`, context, { cause: errors[0] });
  return 'added';
}
