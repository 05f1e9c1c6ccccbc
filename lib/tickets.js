// @ts-check
'use strict'
// Calls a durable store answers later. Each native call that may need the
// store returns its answer as JSON text when the store answered at once
// (the memory store, always), or else a ticket: a number whose `answer`
// notice, drained like any other, carries the answer once the store
// committed it.

const { enactError } = require('./errors')

class Tickets {
  /** @type {Map<number, { resolve: (value: any) => void, reject: (err: Error) => void, promise: Promise<any> }>} */
  #pending = new Map()

  /** Calls waiting for their answer. */
  get size() {
    return this.#pending.size
  }

  /**
   * The answer of a native call: parsed now, or when its ticket's notice
   * comes.
   * @param {string | number} out what the native method returned
   * @returns {Promise<any>}
   */
  answer(out) {
    if (typeof out !== 'number') return Promise.resolve(JSON.parse(out))
    /** @type {(value: any) => void} */
    let resolve = () => {}
    /** @type {(err: Error) => void} */
    let reject = () => {}
    /** @type {Promise<any>} */
    const promise = new Promise((res, rej) => {
      resolve = res
      reject = rej
    })
    this.#pending.set(out, { resolve, reject, promise })
    return promise
  }

  /**
   * An `answer` notice.
   * @param {number} ticket
   * @param {unknown} ok
   * @param {{ code: string, message: string } | null} error
   */
  settle(ticket, ok, error) {
    const call = this.#pending.get(ticket)
    if (call === undefined) return
    this.#pending.delete(ticket)
    if (error !== null && error !== undefined) call.reject(enactError(error.code, error.message))
    else call.resolve(ok ?? null)
  }

  /**
   * Resolves once every call waiting now has its answer (calls made
   * later are not waited for).
   * @returns {Promise<void>}
   */
  answered() {
    return Promise.allSettled([...this.#pending.values()].map((c) => c.promise)).then(() => {})
  }

  /**
   * Rejects every call still waiting (the engine closed before its store
   * answered).
   * @param {() => Error} errorOf
   */
  rejectAll(errorOf) {
    const all = [...this.#pending.values()]
    this.#pending.clear()
    for (const call of all) call.reject(errorOf())
  }
}

module.exports = { Tickets }
