//! Alerts: EVE JSON records, deduplication and rate limiting, sinks.
