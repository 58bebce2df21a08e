/** What the overlay apps share: register layout, placement, the interned model view. */
export * from './registers';
export * from './placement';
export * from './view';
export * from './views';
export * from './flows';
