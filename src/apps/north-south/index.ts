export * from './flows';
export * from './gateways';
export * from './gateway-ports';
export * from './garp';
export * from './app';
export * from './bgp';
export * from './bgp-speakers';
