export * from './flows';
export * from './gateways';
export * from './gateway-ports';
export * from './app';
export * from './bgp';
export * from './bgp-speakers';
