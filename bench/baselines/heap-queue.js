'use strict'
// The hand-written baseline for the executor benchmark: what a good JS
// engineer writes instead of pulling in a library. A binary min-heap over
// parallel arrays (no entry object per task), ordered by priority (higher
// first) then FIFO sequence; a concurrency limit; tasks start synchronously
// in add() while there is room; one shared completion callback (no closure
// per task). Fire-and-forget: add() returns nothing, onIdle() resolves when
// nothing is queued or running. A task's rejection counts as done.

class HeapQueue {
  constructor(concurrency) {
    this.concurrency = concurrency
    this.running = 0
    this.fns = []
    this.prios = []
    this.seqs = []
    this.seq = 0
    this.idleWaiters = []
    this.done = () => {
      this.running--
      this.drain()
    }
  }

  add(fn, priority = 0) {
    if (this.running < this.concurrency && this.fns.length === 0) return this.run(fn)
    const { fns, prios, seqs } = this
    let i = fns.length
    const seq = this.seq++
    fns.push(fn), prios.push(priority), seqs.push(seq)
    while (i > 0) { // sift up
      const p = (i - 1) >> 1
      if (prios[p] > priority || (prios[p] === priority && seqs[p] < seq)) break
      fns[i] = fns[p], prios[i] = prios[p], seqs[i] = seqs[p]
      i = p
    }
    fns[i] = fn, prios[i] = priority, seqs[i] = seq
  }

  pop() {
    const { fns, prios, seqs } = this
    const top = fns[0]
    const fn = fns.pop(), prio = prios.pop(), seq = seqs.pop()
    const n = fns.length
    if (n === 0) return top
    let i = 0
    for (;;) { // sift the last entry down from the root
      let c = 2 * i + 1
      if (c >= n) break
      if (c + 1 < n && (prios[c + 1] > prios[c] || (prios[c + 1] === prios[c] && seqs[c + 1] < seqs[c]))) c++
      if (prio > prios[c] || (prio === prios[c] && seq < seqs[c])) break
      fns[i] = fns[c], prios[i] = prios[c], seqs[i] = seqs[c]
      i = c
    }
    fns[i] = fn, prios[i] = prio, seqs[i] = seq
    return top
  }

  run(fn) {
    this.running++
    let out
    try {
      out = fn()
    } catch {
      out = undefined
    }
    Promise.resolve(out).then(this.done, this.done)
  }

  drain() {
    while (this.running < this.concurrency && this.fns.length > 0) this.run(this.pop())
    if (this.running === 0 && this.fns.length === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters
      this.idleWaiters = []
      for (const resolve of waiters) resolve()
    }
  }

  onIdle() {
    if (this.running === 0 && this.fns.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }
}

module.exports = { HeapQueue }
