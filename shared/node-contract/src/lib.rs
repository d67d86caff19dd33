//! The contract between the compiler's Task states and the node functions: event, result and stable error names.
