//! The bounds of rule files and rules: everything a rule file controls is
//! checked against one of these when it is loaded.

/// Rule files are the files of a directory whose name ends so.
pub const RULE_FILE_SUFFIX: &str = ".rules.toml";
/// Largest rule file read, in bytes.
pub const MAX_RULE_FILE_BYTES: u64 = 1 << 20;
/// Most rule files in one directory.
pub const MAX_RULE_FILES: usize = 256;
/// Most rules in one rule set.
pub const MAX_RULES: usize = 4096;
/// Largest `count` of a `threshold` or `distinct` (the per-group state of a
/// window holds at most this many entries).
pub const MAX_WINDOW_COUNT: u32 = 4096;
/// Longest `within_secs` of a window and `secs` of a suppression: a week.
pub const MAX_WINDOW_SECS: u64 = 7 * 24 * 3600;
/// Most fields in one `group_by` or `per`.
pub const MAX_GROUP_BY: usize = 8;
/// Most `[[rule.test]]` cases of one rule.
pub const MAX_TEST_CASES: usize = 64;
/// Most events of one test case, after `repeat`.
pub const MAX_TEST_EVENTS: usize = 10_000;
