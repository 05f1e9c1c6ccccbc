//! Event patterns: compiled matchers over dotted paths in event data.
