//! A map bounded in entries that drops its least recently used entry to make
//! room: the per-rule group state of the engine (groups are keyed by
//! attacker-controlled addresses and field values, so they must be bounded).
//! Each entry also carries the time it was last used (a stamp the caller
//! gives) and its estimated size in bytes ([`Cost`]), so that the engine can
//! keep all its maps within one byte budget by dropping, across maps, the
//! entry used longest ago.
//!
//! Entries are found by a [`Lookup`], a borrowed view of a key (the fields
//! of an event), which is turned into an owned key only when an entry is
//! created: a flood of events on existing groups allocates nothing, and each
//! key is stored once (in its slot; the hash table holds slot indices).

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

/// No neighbour.
const NIL: usize = usize::MAX;

/// Estimated memory of a key or value beyond the slot that holds it, in
/// bytes (what the rules memory cap counts).
pub(crate) trait Cost {
    fn cost(&self) -> usize;
}

/// A borrowed view of a key of type `K`. Its `Hash` must write what the
/// `Hash` of the key it matches writes.
pub(crate) trait Lookup<K>: Hash {
    fn matches(&self, key: &K) -> bool;
    fn to_key(&self) -> K;
    /// Turns `key` (of an entry dropped to make room) into this one,
    /// reusing its memory where it can.
    fn refill(&self, key: &mut K) {
        *key = self.to_key();
    }
}

/// A value that can take the place of another in the slot of an entry
/// dropped to make room, reusing its memory where it can.
pub(crate) trait Reuse: Sized {
    fn reuse(&mut self, fresh: Self) {
        *self = fresh;
    }
}

struct Slot<K, V> {
    key: K,
    value: V,
    /// Hash of `key`, to move or remove its table entry without hashing again.
    hash: u64,
    /// When it was last used (caller's clock).
    stamp: u64,
    /// Its cost when last measured: [`Lru::slot_bytes`] plus key and value.
    bytes: usize,
    /// Towards the most recently used end.
    prev: usize,
    /// Towards the least recently used end.
    next: usize,
}

/// Bytes of the slot of one entry (key and value inline, hash, links, stamp
/// and cost), for the engine's estimate of an entry's fixed cost.
pub(crate) const fn slot_size<K, V>() -> usize {
    std::mem::size_of::<Slot<K, V>>()
}

/// At most `capacity` entries; slots are kept dense and linked from most
/// (`head`) to least (`tail`) recently used.
pub(crate) struct Lru<K, V> {
    /// Indices into `slots`, by the hash of their key.
    table: HashTable<usize>,
    hasher: foldhash::fast::RandomState,
    slots: Vec<Slot<K, V>>,
    head: usize,
    tail: usize,
    capacity: usize,
    /// Sum of the slots' `bytes`.
    bytes: usize,
    /// Fixed cost of one entry (slot, table entry, headers).
    slot_bytes: usize,
}

impl<K: Hash + Cost, V: Cost + Reuse> Lru<K, V> {
    /// A map of at most `capacity` entries (at least one), each costing
    /// `slot_bytes` plus the [`Cost`] of its key and value.
    pub(crate) fn new(capacity: usize, slot_bytes: usize) -> Self {
        Lru {
            table: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity: capacity.max(1),
            bytes: 0,
            slot_bytes,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Estimated bytes of all entries, as last measured.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The stamp of the least recently used entry.
    pub(crate) fn oldest_stamp(&self) -> Option<u64> {
        (self.tail != NIL).then(|| self.slots[self.tail].stamp)
    }

    /// Drops the least recently used entry.
    pub(crate) fn pop_oldest(&mut self) -> Option<(K, V)> {
        (self.tail != NIL).then(|| self.take(self.tail))
    }

    /// Measures again the most recently used entry (after the caller
    /// changed the value it got from `get_mut` or `get_or_insert_with`).
    pub(crate) fn recost_newest(&mut self) {
        if self.head != NIL {
            let slot = &mut self.slots[self.head];
            let now = self.slot_bytes + slot.key.cost() + slot.value.cost();
            self.bytes = self.bytes - slot.bytes + now;
            slot.bytes = now;
        }
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = (self.slots[i].prev, self.slots[i].next);
        match prev {
            NIL => self.head = next,
            p => self.slots[p].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slots[n].prev = prev,
        }
    }

    fn push_front(&mut self, i: usize) {
        self.slots[i].prev = NIL;
        self.slots[i].next = self.head;
        match self.head {
            NIL => self.tail = i,
            h => self.slots[h].prev = i,
        }
        self.head = i;
    }

    fn touch(&mut self, i: usize, stamp: u64) {
        self.slots[i].stamp = stamp;
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
    }

    /// Removes slot `i`, moving the last slot into its place.
    fn take(&mut self, i: usize) -> (K, V) {
        self.unlink(i);
        if let Ok(entry) = self.table.find_entry(self.slots[i].hash, |&j| j == i) {
            entry.remove();
        }
        let last = self.slots.len() - 1;
        if i != last {
            // Re-point the neighbours and the table entry of the moved slot.
            let (prev, next) = (self.slots[last].prev, self.slots[last].next);
            match prev {
                NIL => self.head = i,
                p => self.slots[p].next = i,
            }
            match next {
                NIL => self.tail = i,
                n => self.slots[n].prev = i,
            }
            if let Some(idx) = self.table.find_mut(self.slots[last].hash, |&j| j == last) {
                *idx = i;
            }
        }
        let slot = self.slots.swap_remove(i);
        self.bytes -= slot.bytes;
        (slot.key, slot.value)
    }

    /// The slot of the key `query` views, and the query's hash.
    fn find<Q: Lookup<K> + ?Sized>(&self, query: &Q) -> (Option<usize>, u64) {
        let hash = self.hasher.hash_one(query);
        let slots = &self.slots;
        let found = self.table.find(hash, |&i| {
            slots[i].hash == hash && query.matches(&slots[i].key)
        });
        (found.copied(), hash)
    }

    /// The value of the key `query` views, marked as most recently used at
    /// `stamp`.
    pub(crate) fn get_mut<Q: Lookup<K> + ?Sized>(
        &mut self,
        query: &Q,
        stamp: u64,
    ) -> Option<&mut V> {
        let i = self.find(query).0?;
        self.touch(i, stamp);
        Some(&mut self.slots[i].value)
    }

    /// The value of the key `query` views, created (with the key made from
    /// `query`) by `make` when absent, marked as most recently used at
    /// `stamp`. Making room drops the least recently used entry: then
    /// whether `stale` holds for its value is returned, and the new entry
    /// takes its slot (and the memory of its key and value, see [`Reuse`]).
    pub(crate) fn get_or_insert_with<Q: Lookup<K> + ?Sized>(
        &mut self,
        query: &Q,
        stamp: u64,
        make: impl FnOnce() -> V,
        stale: impl FnOnce(&V) -> bool,
    ) -> (&mut V, Option<bool>) {
        let (found, hash) = self.find(query);
        if let Some(i) = found {
            self.touch(i, stamp);
            return (&mut self.slots[i].value, None);
        }
        if self.slots.len() >= self.capacity && self.tail != NIL {
            let i = self.tail;
            let was_stale = stale(&self.slots[i].value);
            if let Ok(entry) = self.table.find_entry(self.slots[i].hash, |&j| j == i) {
                entry.remove();
            }
            let slots = &self.slots;
            self.table.insert_unique(hash, i, |&j| slots[j].hash);
            let slot = &mut self.slots[i];
            query.refill(&mut slot.key);
            slot.value.reuse(make());
            slot.hash = hash;
            let bytes = self.slot_bytes + slot.key.cost() + slot.value.cost();
            self.bytes = self.bytes - slot.bytes + bytes;
            slot.bytes = bytes;
            self.touch(i, stamp);
            return (&mut self.slots[i].value, Some(was_stale));
        }
        let i = self.slots.len();
        let slots = &self.slots;
        self.table.insert_unique(hash, i, |&j| slots[j].hash);
        let key = query.to_key();
        let value = make();
        let bytes = self.slot_bytes + key.cost() + value.cost();
        self.bytes += bytes;
        self.slots.push(Slot {
            key,
            value,
            hash,
            stamp,
            bytes,
            prev: NIL,
            next: NIL,
        });
        self.push_front(i);
        (&mut self.slots[i].value, None)
    }

    pub(crate) fn remove<Q: Lookup<K> + ?Sized>(&mut self, query: &Q) -> Option<V> {
        let i = self.find(query).0?;
        Some(self.take(i).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value costs its own number of bytes.
    impl Cost for u32 {
        fn cost(&self) -> usize {
            *self as usize
        }
    }

    impl Reuse for u32 {}

    /// A key is its own view.
    impl Lookup<u32> for u32 {
        fn matches(&self, key: &u32) -> bool {
            self == key
        }
        fn to_key(&self) -> u32 {
            *self
        }
    }

    /// Keys from most to least recently used.
    fn order(lru: &Lru<u32, u32>) -> Vec<u32> {
        let mut out = Vec::new();
        let mut i = lru.head;
        while i != NIL {
            out.push(lru.slots[i].key);
            i = lru.slots[i].next;
        }
        out
    }

    #[test]
    fn evicts_least_recently_used_when_full() {
        let mut lru = Lru::new(3, 100);
        for k in 1..=3 {
            assert!(
                lru.get_or_insert_with(&k, 0, || k * 10, |_| false)
                    .1
                    .is_none()
            );
        }
        assert_eq!(order(&lru), [3, 2, 1]);
        // Touch 1: now 2 is the least recently used.
        assert_eq!(lru.get_mut(&1, 0).copied(), Some(10));
        assert_eq!(order(&lru), [1, 3, 2]);
        // The entry dropped is 2's: its value is what `stale` sees.
        let (v, evicted) = lru.get_or_insert_with(&4, 0, || 40, |&v| v == 20);
        assert_eq!(*v, 40);
        assert_eq!(evicted, Some(true));
        assert_eq!(order(&lru), [4, 1, 3]);
        assert_eq!(lru.len(), 3);
        assert!(lru.get_mut(&2, 0).is_none());
    }

    #[test]
    fn existing_key_is_touched_not_remade() {
        let mut lru = Lru::new(2, 100);
        lru.get_or_insert_with(&1, 0, || 1, |_| false);
        lru.get_or_insert_with(&2, 0, || 2, |_| false);
        let (v, evicted) = lru.get_or_insert_with(&1, 0, || 99, |_| false);
        assert_eq!((*v, evicted), (1, None));
        assert_eq!(order(&lru), [1, 2]);
    }

    #[test]
    fn remove_keeps_links_and_map_consistent() {
        let mut lru = Lru::new(5, 100);
        for k in 1..=5 {
            lru.get_or_insert_with(&k, 0, || k, |_| false);
        }
        // Remove from the middle, the head and the tail; the last slot moves.
        assert_eq!(lru.remove(&3), Some(3));
        assert_eq!(lru.remove(&5), Some(5));
        assert_eq!(lru.remove(&1), Some(1));
        assert_eq!(lru.remove(&1), None);
        assert_eq!(order(&lru), [4, 2]);
        for k in [2, 4] {
            assert_eq!(lru.get_mut(&k, 0).copied(), Some(k));
        }
        assert_eq!(order(&lru), [4, 2]);
        lru.get_or_insert_with(&6, 0, || 6, |_| false);
        assert_eq!(order(&lru), [6, 4, 2]);
        assert_eq!(lru.remove(&2), Some(2));
        assert_eq!(lru.remove(&6), Some(6));
        assert_eq!(lru.remove(&4), Some(4));
        assert_eq!(lru.len(), 0);
        assert_eq!((lru.head, lru.tail), (NIL, NIL));
    }

    #[test]
    fn capacity_one_replaces() {
        let mut lru = Lru::new(0, 100);
        lru.get_or_insert_with(&1, 0, || 1, |_| false);
        let (_, evicted) = lru.get_or_insert_with(&2, 0, || 2, |&v| v == 1);
        assert_eq!(evicted, Some(true));
        assert_eq!(lru.get_mut(&2, 0).copied(), Some(2));
        assert!(lru.get_mut(&1, 0).is_none());
        assert_eq!(lru.len(), 1);
    }

    #[test]
    fn bytes_follow_inserts_changes_and_removals() {
        // Slot cost 100; key k and value v cost k + v bytes.
        let mut lru = Lru::new(2, 100);
        lru.get_or_insert_with(&1, 0, || 10, |_| false);
        lru.get_or_insert_with(&2, 0, || 20, |_| false);
        assert_eq!(lru.bytes(), (100 + 1 + 10) + (100 + 2 + 20));
        *lru.get_mut(&1, 0).expect("present") = 50;
        lru.recost_newest();
        assert_eq!(lru.bytes(), (100 + 1 + 50) + (100 + 2 + 20));
        // Key 2 is now the least recently used and makes room for 3.
        lru.get_or_insert_with(&3, 0, || 0, |_| false);
        assert_eq!(lru.bytes(), (100 + 1 + 50) + (100 + 3));
        lru.remove(&1);
        assert_eq!(lru.bytes(), 100 + 3);
    }

    #[test]
    fn oldest_is_the_least_recently_stamped() {
        let mut lru = Lru::new(5, 0);
        assert_eq!(lru.oldest_stamp(), None);
        lru.get_or_insert_with(&1, 7, || 0, |_| false);
        lru.get_or_insert_with(&2, 8, || 0, |_| false);
        lru.get_or_insert_with(&3, 9, || 0, |_| false);
        lru.get_mut(&1, 10);
        assert_eq!(lru.oldest_stamp(), Some(8));
        assert_eq!(lru.pop_oldest(), Some((2, 0)));
        assert_eq!(lru.oldest_stamp(), Some(9));
        assert_eq!(order(&lru), [1, 3]);
    }
}
