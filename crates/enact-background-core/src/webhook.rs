//! Standard Webhooks signature verification.
