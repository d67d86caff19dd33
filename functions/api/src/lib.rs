//! The api function: Weft's HTTP API.
