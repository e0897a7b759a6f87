//! A map bounded in entries that drops its least recently used entry to make
//! room: the per-rule group state of the engine (groups are keyed by
//! attacker-controlled addresses and field values, so they must be bounded).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// No neighbour.
const NIL: usize = usize::MAX;

struct Slot<K, V> {
    key: K,
    value: V,
    /// Towards the most recently used end.
    prev: usize,
    /// Towards the least recently used end.
    next: usize,
}

/// At most `capacity` entries; slots are kept dense and linked from most
/// (`head`) to least (`tail`) recently used.
pub(crate) struct Lru<K, V> {
    map: HashMap<K, usize, foldhash::fast::RandomState>,
    slots: Vec<Slot<K, V>>,
    head: usize,
    tail: usize,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    /// A map of at most `capacity` entries (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Lru {
            map: HashMap::default(),
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
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

    fn touch(&mut self, i: usize) {
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
    }

    /// Removes slot `i`, moving the last slot into its place.
    fn take(&mut self, i: usize) -> (K, V) {
        self.unlink(i);
        let last = self.slots.len() - 1;
        if i != last {
            // Re-point the neighbours and the map entry of the moved slot.
            let (prev, next) = (self.slots[last].prev, self.slots[last].next);
            match prev {
                NIL => self.head = i,
                p => self.slots[p].next = i,
            }
            match next {
                NIL => self.tail = i,
                n => self.slots[n].prev = i,
            }
            if let Some(idx) = self.map.get_mut(&self.slots[last].key) {
                *idx = i;
            }
        }
        let slot = self.slots.swap_remove(i);
        self.map.remove(&slot.key);
        (slot.key, slot.value)
    }

    /// The value of `key`, marked as most recently used.
    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = *self.map.get(key)?;
        self.touch(i);
        Some(&mut self.slots[i].value)
    }

    /// The value of `key`, created by `make` when absent. Making room drops
    /// the least recently used entry, which is returned.
    pub(crate) fn get_or_insert_with(
        &mut self,
        key: K,
        make: impl FnOnce() -> V,
    ) -> (&mut V, Option<(K, V)>) {
        if let Some(&i) = self.map.get(&key) {
            self.touch(i);
            return (&mut self.slots[i].value, None);
        }
        let evicted = if self.slots.len() >= self.capacity && self.tail != NIL {
            Some(self.take(self.tail))
        } else {
            None
        };
        let i = self.slots.len();
        self.map.insert(key.clone(), i);
        self.slots.push(Slot {
            key,
            value: make(),
            prev: NIL,
            next: NIL,
        });
        self.push_front(i);
        (&mut self.slots[i].value, evicted)
    }

    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = *self.map.get(key)?;
        Some(self.take(i).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut lru = Lru::new(3);
        for k in 1..=3 {
            assert!(lru.get_or_insert_with(k, || k * 10).1.is_none());
        }
        assert_eq!(order(&lru), [3, 2, 1]);
        // Touch 1: now 2 is the least recently used.
        assert_eq!(lru.get_mut(&1).copied(), Some(10));
        assert_eq!(order(&lru), [1, 3, 2]);
        let (v, evicted) = lru.get_or_insert_with(4, || 40);
        assert_eq!(*v, 40);
        assert_eq!(evicted, Some((2, 20)));
        assert_eq!(order(&lru), [4, 1, 3]);
        assert_eq!(lru.len(), 3);
        assert!(lru.get_mut(&2).is_none());
    }

    #[test]
    fn existing_key_is_touched_not_remade() {
        let mut lru = Lru::new(2);
        lru.get_or_insert_with(1, || 1);
        lru.get_or_insert_with(2, || 2);
        let (v, evicted) = lru.get_or_insert_with(1, || 99);
        assert_eq!((*v, evicted), (1, None));
        assert_eq!(order(&lru), [1, 2]);
    }

    #[test]
    fn remove_keeps_links_and_map_consistent() {
        let mut lru = Lru::new(5);
        for k in 1..=5 {
            lru.get_or_insert_with(k, || k);
        }
        // Remove from the middle, the head and the tail; the last slot moves.
        assert_eq!(lru.remove(&3), Some(3));
        assert_eq!(lru.remove(&5), Some(5));
        assert_eq!(lru.remove(&1), Some(1));
        assert_eq!(lru.remove(&1), None);
        assert_eq!(order(&lru), [4, 2]);
        for k in [2, 4] {
            assert_eq!(lru.get_mut(&k).copied(), Some(k));
        }
        assert_eq!(order(&lru), [4, 2]);
        lru.get_or_insert_with(6, || 6);
        assert_eq!(order(&lru), [6, 4, 2]);
        assert_eq!(lru.remove(&2), Some(2));
        assert_eq!(lru.remove(&6), Some(6));
        assert_eq!(lru.remove(&4), Some(4));
        assert_eq!(lru.len(), 0);
        assert_eq!((lru.head, lru.tail), (NIL, NIL));
    }

    #[test]
    fn capacity_one_replaces() {
        let mut lru = Lru::new(0);
        lru.get_or_insert_with(1, || 1);
        let (_, evicted) = lru.get_or_insert_with(2, || 2);
        assert_eq!(evicted, Some((1, 1)));
        assert_eq!(lru.len(), 1);
    }
}
