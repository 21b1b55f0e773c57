//! Micro-benchmarks live under benches/.
