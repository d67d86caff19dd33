//! The Weft compiler: parses `weft/v1` workflow graphs, validates them, and lowers them to
//! Amazon States Language. This crate does no IO and knows nothing of AWS SDKs or async runtimes.
