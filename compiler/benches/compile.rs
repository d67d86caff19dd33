//! Benchmark placeholder (the generated 1,000-node graph arrives with the lowering).
fn main() {}
