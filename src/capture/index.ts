/** Reading OpenFlow conversations out of packet captures. */
export * from './pcap';
export * from './tcp-reassembly';
export * from './openflow-streams';
export * from './openflow-capture';
