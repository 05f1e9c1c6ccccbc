// @ts-check
'use strict'
// Calls a durable store answers later. Each native call that may need the
// store returns its answer as JSON text when the store answered at once
// (the memory store, always), or else a ticket: a number whose `answer`
// notice, drained like any other, carries the answer once the store
// committed it.

const { enactError } = require('./errors')

class Tickets {
  /** @type {Map<number, { resolve: (value: any) => void, reject: (err: Error) => void }>} */
  #pending = new Map()
  /** @type {(() => void)[]} */
  #whenNone = []

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
    return new Promise((resolve, reject) => this.#pending.set(out, { resolve, reject }))
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
    if (this.#pending.size === 0 && this.#whenNone.length > 0) {
      const list = this.#whenNone
      this.#whenNone = []
      for (const resolve of list) resolve()
    }
  }

  /**
   * Resolves once no call waits for its answer.
   * @returns {Promise<void>}
   */
  none() {
    if (this.#pending.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.#whenNone.push(resolve))
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
    const list = this.#whenNone
    this.#whenNone = []
    for (const resolve of list) resolve()
  }
}

module.exports = { Tickets }
