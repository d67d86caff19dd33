//! JavaScript condition lowering (in progress).
