//! The http node function.
