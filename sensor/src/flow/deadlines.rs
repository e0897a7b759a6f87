//! The flows' deadlines, earliest first.
//!
//! A flow's deadline is the time of its last packet plus the timeout of its
//! state, and deadlines are queued as packets come, so the deadlines of one
//! timeout mostly come in order. Each timeout has a lane, a queue in order;
//! a deadline earlier than the last of its lane (packet time stepped back,
//! or a deadline renewed from an older packet) goes to a heap instead. The
//! earliest deadline is the earliest of the lanes' fronts and the heap's
//! top, so they come out in the same order as from one heap of them all,
//! and a flood of new flows costs a queue's push and pop, not a heap's.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Packet time (nanoseconds), the flow's slot and the slot's generation.
pub type Deadline = (i64, u32, u32);

/// Lanes: one per timeout of the flow table.
pub const LANES: usize = 5;

#[derive(Debug)]
pub struct Deadlines {
    lanes: [VecDeque<Deadline>; LANES],
    rest: BinaryHeap<Reverse<Deadline>>,
    /// The earliest deadline's time (`i64::MAX`: none), so that asking
    /// whether one is due, at every packet, reads one number.
    soonest: i64,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            lanes: Default::default(),
            rest: BinaryHeap::new(),
            soonest: i64::MAX,
        }
    }
}

impl Deadlines {
    /// Queues `d` in the lane of its timeout.
    pub fn push(&mut self, lane: usize, d: Deadline) {
        self.soonest = self.soonest.min(d.0);
        let queue = &mut self.lanes[lane];
        if queue.back().is_none_or(|last| *last <= d) {
            queue.push_back(d);
        } else {
            self.rest.push(Reverse(d));
        }
    }

    /// The earliest deadline, and its lane (`None`: the heap).
    fn earliest(&self) -> Option<(Option<usize>, Deadline)> {
        let mut best = self.rest.peek().map(|r| (None, r.0));
        for (lane, queue) in self.lanes.iter().enumerate() {
            if let Some(&d) = queue.front()
                && best.is_none_or(|(_, b)| d < b)
            {
                best = Some((Some(lane), d));
            }
        }
        best
    }

    fn take(&mut self, from: Option<usize>) {
        match from {
            Some(lane) => {
                self.lanes[lane].pop_front();
            }
            None => {
                self.rest.pop();
            }
        }
        self.soonest = self.earliest().map_or(i64::MAX, |(_, d)| d.0);
    }

    /// Takes the earliest deadline.
    pub fn pop(&mut self) -> Option<Deadline> {
        let (from, d) = self.earliest()?;
        self.take(from);
        Some(d)
    }

    /// Takes the earliest deadline if it is strictly before `now`.
    pub fn pop_before(&mut self, now: i64) -> Option<Deadline> {
        if self.soonest >= now {
            return None;
        }
        let (from, d) = self.earliest()?;
        (d.0 < now).then(|| {
            self.take(from);
            d
        })
    }

    pub fn clear(&mut self) {
        self.lanes.iter_mut().for_each(VecDeque::clear);
        self.rest.clear();
        self.soonest = i64::MAX;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same deadlines come out of the lanes in the same order as out of
    /// one heap, whatever order they were pushed in and however pops and
    /// pushes interleave.
    #[test]
    fn deadlines_come_out_as_from_one_heap() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for round in 0..50 {
            let mut lanes = Deadlines::default();
            let mut heap = BinaryHeap::new();
            let mut clock = 1_000_i64;
            for _ in 0..2_000 {
                match next(10) {
                    0..=5 => {
                        // Mostly forward in time, sometimes back (by up to
                        // `round` ticks), with timeouts of five lengths.
                        clock += next(3) as i64 - (next(20) == 0) as i64 * round;
                        let lane = next(LANES as u64) as usize;
                        let d = (clock + 10 * lane as i64, next(50) as u32, next(3) as u32);
                        lanes.push(lane, d);
                        heap.push(Reverse(d));
                    }
                    6..=7 => assert_eq!(lanes.pop(), heap.pop().map(|r| r.0)),
                    _ => {
                        let now = clock + next(30) as i64;
                        let expected = heap
                            .peek()
                            .filter(|r| r.0.0 < now)
                            .is_some()
                            .then(|| heap.pop().map(|r| r.0))
                            .flatten();
                        assert_eq!(lanes.pop_before(now), expected);
                    }
                }
            }
            while let Some(Reverse(d)) = heap.pop() {
                assert_eq!(lanes.pop(), Some(d));
            }
            assert_eq!(lanes.pop(), None);
        }
    }
}
