"""zonemesh's Mininet scenario: model reader, layout (names and paths), node classes, scenario, probes."""
