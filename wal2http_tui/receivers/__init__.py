"""Local HTTP receivers for the demo, the tests and the benchmarks."""
