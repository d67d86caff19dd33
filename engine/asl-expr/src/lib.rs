//! The expression languages of Amazon States Language: intrinsic functions and JSONata.
