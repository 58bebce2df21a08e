import type { PacketInEvent } from '../controller/events';
import type { PacketIn as PacketInMessage } from '../openflow';
import { ethernetHeader, PacketParseError, tryParsePacket, type EthernetHeader, type ParsedPacket } from '../packet';
import { matchValue } from './match';

/**
 * A packet the switch sent to the controller (a `toController()` action or a table whose miss is
 * 'controller'), as apps receive it on `ctx.events.packetIn$`: the port it came in on, the frame,
 * and parsed views computed on first read.
 */
export class PacketIn implements PacketInEvent {
  readonly dpid: bigint;
  readonly session: PacketInEvent['session'];
  /** the PACKET_IN message as decoded */
  readonly message: PacketInMessage;
  /** the switch port the packet came in on */
  readonly inPort: number;
  private parsed: ReturnType<typeof tryParsePacket> | undefined;
  private header: EthernetHeader | null | undefined;

  /** undefined for a PACKET_IN without in_port (OpenFlow 1.3 requires it; a switch that omits it is broken) */
  static from(event: PacketInEvent): PacketIn | undefined {
    const inPort = matchValue(event.message.match, 'in_port');
    return inPort === undefined ? undefined : new PacketIn(event, inPort);
  }

  private constructor(event: PacketInEvent, inPort: number) {
    this.dpid = event.dpid;
    this.session = event.session;
    this.message = event.message;
    this.inPort = inPort;
  }

  /**
   * The frame: a view into the bytes read from the switch, not a copy. Copy it (`Buffer.from`) to
   * keep it after the handler returns, or it pins the whole read in memory.
   */
  get data(): Buffer {
    return this.message.data;
  }

  /** the id of the pipeline table that sent the packet */
  get tableId(): number {
    return this.message.tableId;
  }

  /** Ethernet addresses, ethertype and VLAN, read without parsing further (the cheap first look); undefined for a truncated frame */
  get ethernet(): EthernetHeader | undefined {
    if (this.header === undefined) {
      try {
        this.header = ethernetHeader(this.message.data);
      } catch (e) {
        if (!(e instanceof PacketParseError)) throw e;
        this.header = null;
      }
    }
    return this.header ?? undefined;
  }

  /** every layer (`findLayer(pin.packet, 'arp')`), or undefined when the frame does not parse (`parseError` says why) */
  get packet(): ParsedPacket | undefined {
    this.parsed ??= tryParsePacket(this.message.data);
    return this.parsed.ok ? this.parsed.packet : undefined;
  }

  get parseError(): PacketParseError | undefined {
    this.parsed ??= tryParsePacket(this.message.data);
    return this.parsed.ok ? undefined : this.parsed.error;
  }
}
