// The examples' own tests live beside them (examples/*/); this file makes `npm test` run them.
import '../../examples/port-allowlist/port-allowlist.test';
