import test from 'ava';
import { BehaviorSubject, Subject } from 'rxjs';
import { AmbiguousPortError, ModelPlacement, PacketIn, StoreModelAccess, buildPacket, findLayer, type NetworkModel, type PortNumbers } from '../../src/sdk';
import { TestModelStore } from '../../src/testing';
import { edit, twoZones } from '../apps/helpers';

test('a subnet comes with its mask, network, broadcast and gateway', (t) => {
  const model = new StoreModelAccess(new TestModelStore(twoZones()));
  const web1 = model.port('web1')!;
  const web = model.subnetOf(web1);
  t.like(web.ipv4, { network: '10.1.1.0', prefix: 24, mask: '255.255.255.0', broadcast: '10.1.1.255', gateway: '10.1.1.1' });
  t.true(web.ipv4!.contains('10.1.1.200'));
  t.false(web.ipv4!.contains('10.1.2.1'));
});

test('portByMac finds a port, and asks for the VPC or hypervisor when a MAC is ambiguous', (t) => {
  // red1 takes web1's MAC: MACs are unique only within a VPC
  const clash = edit(twoZones(), (doc) => doc.ports.find((p: { name: string }) => p.name === 'red1').mac = '02:00:00:01:01:0b');
  const model = new StoreModelAccess(new TestModelStore(clash));
  t.throws(() => model.portByMac('02:00:00:01:01:0B'), { instanceOf: AmbiguousPortError, message: /ports web1, red1/ });
  t.is(model.portByMac('02:00:00:01:01:0b', { vpc: 'red' })?.name, 'red1');
  t.is(model.portByMac('02:00:00:01:02:0b')?.name, 'app1');
  t.is(model.portByMac('02:00:00:00:00:00'), undefined);
});

test('a port is placed once its switch reports its interface, with that number; the pinned ofport until then', (t) => {
  const model = twoZones();
  const hv1 = model.hypervisors.find((h) => h.name === 'hv1')!;
  const models = new BehaviorSubject<NetworkModel>(model);
  const numbers = new BehaviorSubject<PortNumbers>(new Map());
  const stop = new Subject<void>();
  const placement = new ModelPlacement(models, numbers, stop);
  const web1 = model.ports.find((p) => p.name === 'web1')!;
  t.is(placement.hypervisorOf(hv1.datapathId)?.name, 'hv1');
  t.is(placement.dpidOf('hv1'), hv1.datapathId);
  t.is(placement.place(web1), undefined, 'not plugged in, no pinned number');
  t.deepEqual(placement.portsOn(hv1.datapathId), []);

  const seen: number[] = [];
  placement.changes$.subscribe((p) => seen.push(p.portsOn(hv1.datapathId).length));
  numbers.next(new Map([[hv1.datapathId, new Map([[web1.interface, 7]])]]));
  const placed = placement.place(web1)!;
  const ofport: number = placed.ofport; // a placed port's number is a number
  t.is(ofport, 7);
  t.is(placed.dpid, hv1.datapathId);
  t.deepEqual(placement.portsOn(hv1.datapathId).map((p) => p.port.name), ['web1']);

  const pinned = edit(model, (doc) => doc.ports.find((p: { name: string }) => p.name === 'red1').ofport = 12);
  models.next(pinned);
  t.is(placement.place(pinned.ports.find((p) => p.name === 'red1')!)?.ofport, 12, 'the model pins it');
  t.deepEqual(seen, [0, 1, 2]);
  stop.next();
});

test('a PacketIn has its in_port and parses its frame on demand; a truncated frame parses to undefined', (t) => {
  const frame = buildPacket([
    { type: 'ethernet', src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' },
    { type: 'ipv4', src: '10.0.0.1', dst: '10.0.0.2' },
    { type: 'icmp', icmpType: 8, code: 0 },
    { type: 'icmp-echo', identifier: 1, sequence: 1 },
  ]);
  const event = (data: Buffer) => ({
    dpid: 1n,
    session: undefined as never,
    message: { type: 'PACKET_IN' as const, xid: 0, bufferId: 0xffffffff, totalLen: data.length, reason: 0, tableId: 3, cookie: 0n, match: [{ field: 'in_port' as const, value: 5 }], data },
  });
  const pin = PacketIn.from(event(frame))!;
  t.is(pin.inPort, 5);
  t.is(pin.tableId, 3);
  t.is(pin.ethernet?.src, '02:00:00:00:00:01');
  t.is(findLayer(pin.packet!, 'ipv4')?.dst, '10.0.0.2');
  const short = PacketIn.from(event(frame.subarray(0, 10)))!;
  t.is(short.ethernet, undefined);
  t.is(short.packet, undefined);
  t.truthy(short.parseError);
  t.is(PacketIn.from({ ...event(frame), message: { ...event(frame).message, match: [] } }), undefined, 'no in_port: no PacketIn');
});
