/**
 * inversify, for apps and the runtime. inversify 8 ships only as an ES module; our CommonJS build
 * reaches it through Node's require(esm) (Node >= 20.19), and its types through an import type
 * with resolution-mode. Import DI from here (or from 'zonemesh/sdk'), never from 'inversify'.
 */
import 'reflect-metadata'; // lets constructor parameters typed by a class be injected without @inject
import type * as Inversify from 'inversify' with { 'resolution-mode': 'import' };

// eslint-disable-next-line @typescript-eslint/no-require-imports
const inversify: typeof Inversify = require('inversify');

export const { Container, injectable, inject, multiInject, optional } = inversify;
export type Container = Inversify.Container;
export type ServiceIdentifier<T = unknown> = Inversify.ServiceIdentifier<T>;
export type Newable<T = unknown> = Inversify.Newable<T>;
/** what a toDynamicValue builder gets (annotate it: the fluent syntax's types do not reach it under our module resolution) */
export type ResolutionContext = Inversify.ResolutionContext;
