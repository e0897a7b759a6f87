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

/// Default of the rules memory cap (`[rules] memcap_bytes`,
/// `--rules-memcap`): the estimated bytes of all rule state together.
pub const DEFAULT_RULES_MEMCAP_BYTES: usize = 32 << 20;
/// What the rules memory cap counts for one group of rule state (a window,
/// sequence, suppression or concurrent-key entry of one rule): twice its slot
/// in the LRU and its hash-map entry (both grow by doubling), the allocation
/// headers of its key and value, and the smallest allocation of its entries
/// (4). Checked against the real sizes when the engine is compiled.
pub const RULE_GROUP_BYTES: usize = 384;
/// What one component of a group key (a field value) counts, plus the bytes
/// of its text when it is a string: the value inline and its allocation header.
pub const RULE_KEY_PART_BYTES: usize = 48;
/// What one entry inside a group counts (a timestamp and source of a
/// `threshold`, a value of a `distinct` plus the bytes of its text, an open
/// session of a `concurrent` key): twice the entry inline (vectors grow by
/// doubling and are shrunk back when under half full) and an allocation
/// header for the text of a `distinct` value.
pub const RULE_ENTRY_BYTES: usize = 80;
