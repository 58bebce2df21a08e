/** The run config of `zonemesh run`: apps, listeners, dial targets, model, control socket, app settings. */
export * from './run-config';
export * from './watch';
