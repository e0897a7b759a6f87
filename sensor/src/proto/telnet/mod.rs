//! Telnet (RFC 854, 855).
