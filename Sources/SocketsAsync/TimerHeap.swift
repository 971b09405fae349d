/// One armed deadline: the earliest deadline among the waiters of one direction of one
/// registration.
struct TimerEntry {
    var deadline: ContinuousClock.Instant
    let registration: Registration
    let direction: Direction
}

/// A binary min-heap of deadlines, one entry at most per registration and direction, each
/// entry's position kept in its registration so that it can be moved or removed in O(log n).
///
/// Guarded by the event loop's shared lock (positions included).
struct TimerHeap {
    private var entries: [TimerEntry] = []

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    /// The earliest deadline, if any.
    var earliest: ContinuousClock.Instant? { entries.first?.deadline }

    /// Arms the timer of `registration`'s `direction` for `deadline`, moving it if armed.
    mutating func schedule(_ registration: Registration, _ direction: Direction, at deadline: ContinuousClock.Instant) {
        let position = registration.heapPosition(direction)
        if position >= 0 {
            let old = entries[position].deadline
            entries[position].deadline = deadline
            if deadline < old { siftUp(position) } else { siftDown(position) }
        } else {
            entries.append(TimerEntry(deadline: deadline, registration: registration, direction: direction))
            registration.setHeapPosition(direction, entries.count - 1)
            siftUp(entries.count - 1)
        }
    }

    /// Disarms the timer of `registration`'s `direction`, if armed.
    mutating func remove(_ registration: Registration, _ direction: Direction) {
        let position = registration.heapPosition(direction)
        guard position >= 0 else { return }
        registration.setHeapPosition(direction, -1)
        let last = entries.count - 1
        if position != last {
            entries.swapAt(position, last)
            entries.removeLast()
            entries[position].registration.setHeapPosition(entries[position].direction, position)
            siftDown(position)
            siftUp(position)
        } else {
            entries.removeLast()
        }
    }

    /// Removes every entry due at `now` and appends it to `expired`.
    mutating func popExpired(now: ContinuousClock.Instant, into expired: inout [TimerEntry]) {
        while let first = entries.first, first.deadline <= now {
            expired.append(first)
            remove(first.registration, first.direction)
        }
    }

    /// Removes every entry (the loop is stopping).
    mutating func removeAll() {
        for entry in entries { entry.registration.setHeapPosition(entry.direction, -1) }
        entries.removeAll()
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].deadline < entries[parent].deadline else { break }
            swapEntries(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < entries.count else { break }
            let right = left + 1
            var smallest = left
            if right < entries.count, entries[right].deadline < entries[left].deadline { smallest = right }
            guard entries[smallest].deadline < entries[parent].deadline else { break }
            swapEntries(parent, smallest)
            parent = smallest
        }
    }

    private mutating func swapEntries(_ a: Int, _ b: Int) {
        entries.swapAt(a, b)
        entries[a].registration.setHeapPosition(entries[a].direction, a)
        entries[b].registration.setHeapPosition(entries[b].direction, b)
    }
}
