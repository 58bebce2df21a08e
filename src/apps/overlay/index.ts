/** What the overlay apps share: register layout and the interned model view. */
export * from './registers';
export * from './view';
export * from './views';
export * from './flows';
