//! Topic Name rules (MQTT 5.0 §4.7, 3.1.1 §4.7).

/// Topic Name rules for PUBLISH (5.0 §4.7, [MQTT-3.3.2-2]): no wildcard
/// characters. Emptiness is checked by the caller (5.0 allows an empty name
/// with a Topic Alias).
pub fn check_topic_name(name: &[u8]) -> Result<(), &'static str> {
    if has_wildcard(name) {
        return Err("wildcard character in topic name");
    }
    Ok(())
}

/// Whether `bytes` hold `+` or `#`. One pass without early exit, so it
/// vectorises: names and filters are short and nearly always clean.
pub(super) fn has_wildcard(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .fold(false, |found, &b| found | (b == b'+') | (b == b'#'))
}
