//! The in-process invoker.
