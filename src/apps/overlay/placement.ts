/** The overlay apps read the runtime's port placement (src/runtime/placement.ts) through this token. */
export { PORT_PLACEMENT, type PortPlacement, type PortNumbers as Placement } from '../../sdk/placement';
