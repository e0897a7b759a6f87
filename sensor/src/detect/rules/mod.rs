//! Declarative rules: loading, validation, evaluation, and their test cases.
