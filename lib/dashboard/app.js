// @ts-check
// The dashboard page's script (served as app.js beside index.html; no build
// step, no framework, nothing from another origin). It polls the JSON API
// under ./api/ every 2 s and draws what the engine holds.
//
// Safety: every value that comes from the engine (names, inputs, outputs,
// errors, trigger sources) reaches the page as text only: elements are made
// with createElement / createElementNS and filled with textContent or
// setAttribute on fixed, non-script attributes. Nothing is ever parsed as
// HTML, and the CSP forbids inline script anyway.
'use strict'
;(() => {
  const POLL_MS = 2000
  const SVG_NS = 'http://www.w3.org/2000/svg'

  /**
   * @typedef {{ t: number, completed: number, failed: number, timeout: number, cancelled: number, queued: number, running: number, delayed: number | null }} Sample
   * @typedef {{ kind: 'execution' | 'trigger', id: string }} DrawerTarget
   */

  const state = {
    /** @type {any} */
    info: null,
    /** @type {Sample[]} */
    samples: [],
    /** @type {any} */
    stats: null,
    windowSec: 300,
    tab: 'executions',
    /** @type {DrawerTarget | null} */
    drawer: null,
    /** @type {Set<string>} */
    tenants: new Set(),
    /** @type {Set<string>} */
    callables: new Set(),
    execSeq: 0,
    /** The cursor of the next older page of executions, or null. */
    execNext: /** @type {string | null} */ (null),
    /** Older pages are shown: the live refresh leaves the list alone. */
    execPaged: false,
    triggerSeq: 0,
    drawerSeq: 0,
    /** The server's clock minus this browser's (ms), from the last stats answer. */
    skew: 0,
  }

  /** The time on the server's clock, which stamps samples and records. */
  const serverNow = () => Date.now() + state.skew

  // -- DOM helpers ------------------------------------------------------------

  /**
   * @param {string} id
   * @returns {HTMLElement}
   */
  const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id))

  /**
   * An element. `props`: `class`, `text`, `title`, `data` (data-*
   * attributes), `attrs` (other fixed attributes), `on` (listeners).
   * Children are nodes or strings (as text).
   * @template {keyof HTMLElementTagNameMap} K
   * @param {K} tag
   * @param {{ class?: string, text?: unknown, title?: string, data?: Record<string, string>, attrs?: Record<string, string>, on?: Record<string, (ev: any) => void> } | null} [props]
   * @param {(Node | string | null | undefined | false)[]} children
   * @returns {HTMLElementTagNameMap[K]}
   */
  function el(tag, props, ...children) {
    const node = document.createElement(tag)
    if (props) {
      if (props.class) node.className = props.class
      if (props.text !== undefined) node.textContent = String(props.text)
      if (props.title !== undefined) node.title = props.title
      if (props.data) for (const [k, v] of Object.entries(props.data)) node.dataset[k] = v
      if (props.attrs) for (const [k, v] of Object.entries(props.attrs)) node.setAttribute(k, v)
      if (props.on) for (const [k, fn] of Object.entries(props.on)) node.addEventListener(k, fn)
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue
      node.append(typeof child === 'string' ? document.createTextNode(child) : child)
    }
    return node
  }

  /**
   * An SVG element with attributes.
   * @param {string} tag
   * @param {Record<string, string | number>} [attrs]
   * @param {string} [text]
   * @returns {SVGElement}
   */
  function svgEl(tag, attrs = {}, text) {
    const node = /** @type {SVGElement} */ (document.createElementNS(SVG_NS, tag))
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v))
    if (text !== undefined) node.textContent = text
    return node
  }

  /** @param {Element} node */
  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild)
  }

  // -- API ---------------------------------------------------------------------

  class ApiError extends Error {
    /**
     * @param {number} status
     * @param {string} code
     * @param {string} message
     */
    constructor(status, code, message) {
      super(message)
      this.status = status
      this.code = code
    }
  }

  /**
   * Calls the API (relative URL, so any mount path works). POSTs carry
   * the header the server requires of actions.
   * @param {string} path
   * @param {{ method?: 'GET' | 'POST', body?: unknown }} [options]
   * @returns {Promise<any>}
   */
  async function api(path, options = {}) {
    const method = options.method ?? 'GET'
    /** @type {Record<string, string>} */
    const headers = { accept: 'application/json' }
    /** @type {RequestInit} */
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' }
    if (method === 'POST') {
      headers['x-enact-dashboard'] = '1'
      headers['content-type'] = 'application/json'
      init.body = JSON.stringify(options.body ?? {})
    }
    let res
    try {
      res = await fetch(path, init)
    } catch (err) {
      throw new ApiError(0, 'NETWORK', `the server did not answer (${err instanceof Error ? err.message : String(err)})`)
    }
    /** @type {any} */
    let data = null
    try {
      data = await res.json()
    } catch {}
    if (!res.ok) {
      const error = data && typeof data === 'object' && data.error && typeof data.error === 'object' ? data.error : {}
      throw new ApiError(res.status, typeof error.code === 'string' ? error.code : `HTTP_${res.status}`, typeof error.message === 'string' ? error.message : res.statusText)
    }
    return data
  }

  /** @param {unknown} err */
  function errorText(err) {
    if (err instanceof ApiError) return `${err.status || ''} ${err.code}: ${err.message}`.trim()
    return err instanceof Error ? err.message : String(err)
  }

  // -- formatting ----------------------------------------------------------------

  const numberFormat = new Intl.NumberFormat('en-US')

  /** @param {unknown} n */
  function fmtNum(n) {
    return typeof n === 'number' && Number.isFinite(n) ? numberFormat.format(n) : '—'
  }

  /** @param {unknown} iso */
  function timeOf(iso) {
    if (typeof iso !== 'string') return NaN
    return Date.parse(iso)
  }

  /** @param {unknown} iso */
  function fmtAbs(iso) {
    const t = timeOf(iso)
    return Number.isNaN(t) ? '' : new Date(t).toISOString().replace('T', ' ').replace(/\.(\d{3})\d*Z$/, '.$1 UTC')
  }

  /** @param {number} ms */
  function fmtDuration(ms) {
    if (!Number.isFinite(ms) || ms < 0) return '—'
    if (ms < 1000) return `${Math.round(ms)} ms`
    if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`
    /**
     * @param {number} big
     * @param {string} bigUnit
     * @param {number} small
     * @param {string} smallUnit
     */
    const two = (big, bigUnit, small, smallUnit) => (small === 0 ? `${big} ${bigUnit}` : `${big} ${bigUnit} ${small} ${smallUnit}`)
    if (ms < 3_600_000) return two(Math.floor(ms / 60_000), 'min', Math.round((ms % 60_000) / 1000), 's')
    return two(Math.floor(ms / 3_600_000), 'h', Math.round((ms % 3_600_000) / 60_000), 'min')
  }

  /**
   * "12 s ago", "in 3 min"; the absolute time goes in the title.
   * @param {unknown} iso
   */
  function fmtRel(iso) {
    const t = timeOf(iso)
    if (Number.isNaN(t)) return '—'
    const d = serverNow() - t
    const a = Math.abs(d)
    let text
    if (a < 1000) return d >= 0 ? 'just now' : 'now'
    if (a < 60_000) text = `${Math.round(a / 1000)} s`
    else if (a < 3_600_000) text = `${Math.round(a / 60_000)} min`
    else if (a < 86_400_000) text = `${Math.round(a / 3_600_000)} h`
    else text = `${Math.round(a / 86_400_000)} d`
    return d >= 0 ? `${text} ago` : `in ${text}`
  }

  /**
   * A time cell: relative text, absolute title.
   * @param {unknown} iso
   */
  function timeNode(iso) {
    if (typeof iso !== 'string') return el('span', { class: 'muted', text: '—' })
    return el('time', { text: fmtRel(iso), title: fmtAbs(iso), attrs: { datetime: iso } })
  }

  /**
   * Any value as readable text: strings as they are, the rest as indented JSON.
   * @param {unknown} value
   */
  function pretty(value) {
    if (typeof value === 'string') return value
    try {
      const text = JSON.stringify(value, null, 2)
      return text === undefined ? String(value) : text
    } catch {
      return String(value)
    }
  }

  /**
   * Short one-line JSON.
   * @param {unknown} value
   * @param {number} [max]
   */
  function compact(value, max = 60) {
    let text
    try {
      text = typeof value === 'string' ? value : JSON.stringify(value)
    } catch {
      text = String(value)
    }
    text = String(text)
    return text.length > max ? `${text.slice(0, max - 1)}…` : text
  }

  /**
   * @param {string} id
   * @param {number} [keep]
   */
  function shortId(id, keep = 10) {
    const m = /^([a-z]+_)(.*)$/.exec(id)
    if (!m || m[2].length <= keep) return id
    return `${m[1]}…${m[2].slice(-keep)}`
  }

  /**
   * A status badge.
   * @param {unknown} status
   */
  function badge(status) {
    const s = String(status ?? '—')
    return el('span', { class: 'badge', text: s, data: { status: s } })
  }

  /**
   * A progress value (a number: percent; or small JSON) as a node.
   * @param {unknown} p
   */
  function progressNode(p) {
    if (p === undefined || p === null) return el('span', { class: 'muted', text: '—' })
    /** @type {number | null} */
    let pct = null
    if (typeof p === 'number' && Number.isFinite(p)) pct = p
    else if (p && typeof p === 'object') {
      const o = /** @type {any} */ (p)
      if (typeof o.percent === 'number') pct = o.percent
      else if (typeof o.done === 'number' && typeof o.total === 'number' && o.total > 0) pct = (100 * o.done) / o.total
      else if (typeof o.current === 'number' && typeof o.total === 'number' && o.total > 0) pct = (100 * o.current) / o.total
    }
    if (pct === null) return el('span', { class: 'mono', text: compact(p, 40), title: compact(p, 400) })
    const bar = el('progress', { attrs: { max: '100', value: String(Math.max(0, Math.min(100, pct))) } })
    const label = typeof p === 'number' ? `${Math.round(pct)}%` : compact(p, 28)
    return el('span', { title: compact(p, 400) }, bar, el('span', { class: 'progress-text', text: label }))
  }

  // -- toast and live indicator ------------------------------------------------------

  /** @type {ReturnType<typeof setTimeout> | null} */
  let toastTimer = null

  /**
   * Shows a message: errors stay until dismissed, the rest for 4 s.
   * @param {'ok' | 'error'} kind
   * @param {string} text
   */
  function toast(kind, text) {
    const box = byId('toast')
    box.dataset.kind = kind
    byId('toast-text').textContent = text
    box.hidden = false
    if (toastTimer !== null) clearTimeout(toastTimer)
    toastTimer = kind === 'error' ? null : setTimeout(() => (box.hidden = true), 4000)
  }

  /**
   * @param {boolean} ok
   * @param {string} [detail]
   */
  function setLive(ok, detail) {
    const live = byId('live')
    live.dataset.state = ok ? 'ok' : 'error'
    byId('live-text').textContent = ok ? `live · ${new Date().toLocaleTimeString('en-GB')}` : `disconnected: ${detail ?? ''}`
  }

  // -- counters --------------------------------------------------------------------

  /** @param {any} stats */
  function renderTiles(stats) {
    const tiles = byId('tiles')
    clear(tiles)
    /** @type {[string, string, unknown, string?][]} */
    const list = [
      ['queued', 'Queued', stats.queued],
      ['running', 'Running', stats.running, typeof stats.concurrency === 'number' ? `of ${fmtNum(stats.concurrency)} slots` : undefined],
    ]
    if (typeof stats.delayed === 'number') list.push(['delayed', 'Delayed', stats.delayed])
    const ended = stats.ended && typeof stats.ended === 'object' ? stats.ended : null
    const since = ended ? 'since start' : undefined
    list.push(
      ['completed', 'Completed', ended ? ended.completed : stats.completed, since],
      ['failed', 'Failed', ended ? ended.failed : stats.failed, since],
      ['timeout', 'Timed out', ended ? ended.timeout : stats.timeout, since],
      ['cancelled', 'Cancelled', ended ? ended.cancelled : stats.cancelled, since],
    )
    if (typeof stats.submitted === 'number') list.push(['submitted', 'Submitted', stats.submitted, typeof stats.retried === 'number' ? `${fmtNum(stats.retried)} retries` : undefined])
    for (const [kind, label, value, sub] of list) {
      const tile = el('div', { class: 'tile', data: { kind } }, el('div', { class: 'label', text: label }), el('div', { class: 'value', text: fmtNum(value) }), sub ? el('div', { class: 'sub', text: sub }) : null)
      if (typeof value === 'number' && value > 0) tile.dataset.nonzero = ''
      tiles.append(tile)
    }
  }

  // -- charts -------------------------------------------------------------------------

  /** Rates are averaged over this many milliseconds before each sample. */
  const RATE_WINDOW_MS = 5000

  /**
   * Per-second rates of a cumulative counter, each averaged over the
   * samples of the RATE_WINDOW_MS before it (rare events would otherwise
   * draw as spikes), with gaps (null) where samples are missing. A counter
   * that went down (per-status counts after a retry) counts as 0.
   * @param {Sample[]} samples
   * @param {(s: Sample) => number} pick
   * @returns {({ t: number, v: number } | null)[]}
   */
  function rates(samples, pick) {
    /** @type {({ t: number, v: number } | null)[]} */
    const out = []
    const interval = state.info?.sampleIntervalMs ?? 1000
    let from = 0 // the first sample of the current unbroken run
    for (let i = 1; i < samples.length; i++) {
      const b = samples[i]
      if (b.t - samples[i - 1].t > interval * 3.5) {
        out.push(null)
        from = i
        continue
      }
      let j = i - 1
      while (j > from && b.t - samples[j - 1].t <= RATE_WINDOW_MS) j--
      let sum = 0
      for (let k = j + 1; k <= i; k++) sum += Math.max(0, pick(samples[k]) - pick(samples[k - 1]))
      const dt = (b.t - samples[j].t) / 1000
      if (dt > 0) out.push({ t: b.t, v: sum / dt })
    }
    return out
  }

  /**
   * Levels, with gaps where samples are missing.
   * @param {Sample[]} samples
   * @param {(s: Sample) => number | null} pick
   */
  function levels(samples, pick) {
    /** @type {({ t: number, v: number } | null)[]} */
    const out = []
    const interval = state.info?.sampleIntervalMs ?? 1000
    for (let i = 0; i < samples.length; i++) {
      const v = pick(samples[i])
      if (v === null) continue
      if (i > 0 && samples[i].t - samples[i - 1].t > interval * 3.5) out.push(null)
      out.push({ t: samples[i].t, v })
    }
    return out
  }

  /** A round upper bound for an axis. @param {number} v */
  function niceMax(v) {
    if (!(v > 0)) return 1
    const p = 10 ** Math.floor(Math.log10(v))
    for (const m of [1, 2, 4, 5, 10]) if (v <= m * p) return m * p
    return 10 * p
  }

  /** @param {number} v */
  function axisText(v) {
    if (v === 0) return '0'
    if (v >= 10_000) return `${Math.round(v / 1000)}k`
    if (v >= 1000) return `${(v / 1000).toFixed(1)}k`
    return Number.isInteger(v) ? String(v) : v.toFixed(v < 1 ? 2 : 1)
  }

  /**
   * Draws series into an SVG (time on x over the chosen window, values on y).
   * @param {SVGSVGElement} svg
   * @param {{ cls: string, points: ({ t: number, v: number } | null)[], area?: boolean }[]} series
   */
  function drawChart(svg, series) {
    const W = Math.max(200, Math.round(svg.clientWidth || 360))
    const H = Math.max(80, Math.round(svg.clientHeight || 130))
    const pad = { l: 34, r: 6, t: 8, b: 18 }
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`)
    clear(svg)
    const now = serverNow()
    const span = state.windowSec * 1000
    const t0 = now - span
    let max = 0
    let any = false
    for (const s of series) {
      for (const p of s.points) {
        if (p !== null && p.t >= t0) {
          any = true
          if (p.v > max) max = p.v
        }
      }
    }
    const yMax = niceMax(max)
    const x = (/** @type {number} */ t) => pad.l + ((t - t0) / span) * (W - pad.l - pad.r)
    const y = (/** @type {number} */ v) => pad.t + (1 - v / yMax) * (H - pad.t - pad.b)
    for (const f of [0, 0.5, 1]) {
      const yy = y(yMax * f)
      svg.append(svgEl('line', { class: 'grid-line', x1: pad.l, x2: W - pad.r, y1: yy, y2: yy }))
      svg.append(svgEl('text', { class: 'axis-label', x: pad.l - 6, y: yy + 3, 'text-anchor': 'end' }, axisText(yMax * f)))
    }
    const minutes = state.windowSec / 60
    for (const [f, label] of /** @type {[number, string][]} */ ([
      [0, `−${minutes} min`],
      [0.5, `−${minutes / 2} min`],
      [1, 'now'],
    ])) {
      svg.append(svgEl('text', { class: 'axis-label', x: pad.l + f * (W - pad.l - pad.r), y: H - 4, 'text-anchor': f === 0 ? 'start' : f === 1 ? 'end' : 'middle' }, label))
    }
    if (!any) {
      svg.append(svgEl('text', { class: 'placeholder', x: (W + pad.l) / 2, y: H / 2, 'text-anchor': 'middle' }, 'collecting samples…'))
      return
    }
    for (const s of series) {
      /** @type {{ t: number, v: number }[][]} */
      const runs = [[]]
      for (const p of s.points) {
        if (p === null) runs.push([])
        else if (p.t >= t0 - 2000) runs[runs.length - 1].push(p)
      }
      for (const run of runs) {
        if (run.length === 0) continue
        const d = run.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(Math.max(p.t, t0)).toFixed(1)},${y(p.v).toFixed(1)}`).join('')
        if (s.area) {
          const base = y(0).toFixed(1)
          const area = `${d}L${x(Math.max(run[run.length - 1].t, t0)).toFixed(1)},${base}L${x(Math.max(run[0].t, t0)).toFixed(1)},${base}Z`
          svg.append(svgEl('path', { class: `area ${s.cls}`, d: area }))
        }
        svg.append(svgEl('path', { class: `line ${s.cls}`, d: run.length === 1 ? `${d}h1` : d }))
      }
    }
  }

  /**
   * @param {string} id
   * @returns {SVGSVGElement}
   */
  const plotOf = (id) => /** @type {SVGSVGElement} */ (byId(id).querySelector('svg.plot'))

  /**
   * @param {({ t: number, v: number } | null)[]} points
   */
  function lastValue(points) {
    for (let i = points.length - 1; i >= 0; i--) {
      const p = points[i]
      if (p !== null) return p.v
    }
    return null
  }

  function renderCharts() {
    const samples = state.samples
    const throughput = rates(samples, (s) => s.completed)
    const failures = rates(samples, (s) => s.failed + s.timeout)
    drawChart(plotOf('chart-throughput'), [{ cls: 's-throughput', points: throughput, area: true }])
    drawChart(plotOf('chart-failures'), [{ cls: 's-failures', points: failures, area: true }])
    const hasDelayed = samples.some((s) => s.delayed !== null)
    /** @type {{ cls: string, name: string, points: ({ t: number, v: number } | null)[] }[]} */
    const queue = [
      { cls: 's-queued', name: 'queued', points: levels(samples, (s) => s.queued) },
      { cls: 's-running', name: 'running', points: levels(samples, (s) => s.running) },
    ]
    if (hasDelayed) queue.push({ cls: 's-delayed', name: 'delayed', points: levels(samples, (s) => s.delayed) })
    drawChart(plotOf('chart-queue'), queue)
    /** @param {number | null} v */
    const rate = (v) => (v === null ? '' : `${v < 10 ? v.toFixed(1) : Math.round(v)}/s`)
    const nowOf = (/** @type {string} */ id) => /** @type {HTMLElement} */ (byId(id).querySelector('[data-now]'))
    nowOf('chart-throughput').textContent = rate(lastValue(throughput))
    nowOf('chart-failures').textContent = rate(lastValue(failures))
    const legend = /** @type {HTMLElement} */ (byId('chart-queue').querySelector('[data-legend]'))
    clear(legend)
    for (const s of queue) {
      const v = lastValue(s.points)
      legend.append(el('span', { class: 'key' }, el('span', { class: `swatch ${s.name}` }), `${s.name} ${v === null ? '' : fmtNum(v)}`))
    }
  }

  // -- executions --------------------------------------------------------------------

  /** @param {HTMLFormElement} form */
  function formQuery(form) {
    const params = new URLSearchParams()
    for (const [k, v] of new FormData(form)) {
      const text = String(v).trim()
      if (text !== '') params.set(k, text)
    }
    return params
  }

  /**
   * The newest page (or, with `older`, the page after the last one shown).
   * @param {boolean} [older]
   */
  async function loadExecutions(older = false) {
    const seq = ++state.execSeq
    const query = formQuery(/** @type {HTMLFormElement} */ (byId('exec-filters')))
    if (older && state.execNext) query.set('after', state.execNext)
    const data = await api(`api/executions?${query}`)
    if (seq !== state.execSeq) return
    state.execNext = data.next ?? null
    state.execPaged = older
    renderExecutions(data.executions, older)
  }

  /**
   * @param {any[]} list
   * @param {boolean} append
   */
  function renderExecutions(list, append) {
    const tbody = /** @type {HTMLElement} */ (byId('exec-table').querySelector('tbody'))
    if (!append) clear(tbody)
    const now = serverNow()
    for (const e of list) {
      if (typeof e.tenantId === 'string') state.tenants.add(e.tenantId)
      if (typeof e.callableName === 'string') state.callables.add(e.callableName)
      const started = timeOf(e.startedAt)
      const ended = timeOf(e.completedAt)
      const duration = Number.isNaN(started) ? NaN : (Number.isNaN(ended) ? (e.status === 'running' ? now : NaN) : ended) - started
      const row = el(
        'tr',
        {
          class: 'clickable',
          data: { id: String(e.executionId), status: String(e.status) },
          attrs: { tabindex: '0' },
          on: {
            click: () => openDrawer({ kind: 'execution', id: String(e.executionId) }),
            keydown: (ev) => {
              if (ev.key === 'Enter') openDrawer({ kind: 'execution', id: String(e.executionId) })
            },
          },
        },
        el('td', null, badge(e.status)),
        el('td', { class: 'mono', title: String(e.executionId) }, shortId(String(e.executionId))),
        el('td', { text: e.callableName }),
        el('td', { text: e.tenantId }),
        el('td', { class: 'num', text: e.attempt ?? '—' }),
        el('td', null, progressNode(e.progress)),
        el('td', null, timeNode(e.queuedAt)),
        el('td', { class: 'muted', text: Number.isNaN(duration) ? '—' : fmtDuration(duration) }),
        el('td', { class: 'error-cell', text: e.error ?? '', title: e.error ?? '' }),
      )
      if (state.drawer?.kind === 'execution' && state.drawer.id === e.executionId) row.classList.add('selected')
      tbody.append(row)
    }
    const shown = tbody.children.length
    byId('exec-empty').hidden = shown > 0
    byId('exec-count').textContent = state.execNext ? `newest ${fmtNum(shown)}` : `${fmtNum(shown)} shown`
    byId('exec-more').hidden = !state.execNext
    refreshDatalists()
  }

  // -- triggers -------------------------------------------------------------------------

  const OPS = /** @type {Record<string, string>} */ ({ gt: '>', gte: '≥', lt: '<', lte: '≤', eq: '=', neq: '≠' })

  /** @param {any} t */
  function conditionText(t) {
    const c = t.condition ?? {}
    switch (t.type) {
      case 'schedule':
        if (typeof c.cronExpression === 'string') return `cron ${c.cronExpression}${c.timezone ? ` (${c.timezone})` : ''}`
        if (typeof c.intervalSeconds === 'number') return `every ${c.intervalSeconds < 60 ? `${c.intervalSeconds} s` : fmtDuration(c.intervalSeconds * 1000)}`
        return '—'
      case 'event':
      case 'lifecycle':
        return `${c.eventType ?? '?'}${c.eventPattern ? ' + pattern' : ''}`
      case 'threshold':
        return `${c.metricName ?? '?'} ${OPS[c.thresholdOperator] ?? c.thresholdOperator ?? '?'} ${c.thresholdValue ?? '?'}`
      case 'webhook':
        return t.webhookSecret !== undefined ? 'signed' : 'unsigned'
      default:
        return '—'
    }
  }

  async function loadTriggers() {
    const seq = ++state.triggerSeq
    const query = formQuery(/** @type {HTMLFormElement} */ (byId('trigger-filters')))
    const data = await api(`api/triggers?${query}`)
    if (seq !== state.triggerSeq) return
    renderTriggers(data.triggers)
  }

  /**
   * The pause/resume and fire buttons of a trigger.
   * @param {any} t
   * @param {boolean} [small]
   */
  function triggerButtons(t, small = true) {
    const id = String(t.triggerId)
    const size = small ? ' small' : ''
    const paused = t.status === 'paused'
    const toggle = el('button', {
      class: `btn${size}`,
      text: paused ? 'Resume' : 'Pause',
      data: { action: paused ? 'resume' : 'pause', id },
      attrs: { type: 'button' },
      on: {
        click: (ev) => {
          ev.stopPropagation()
          void act(/** @type {HTMLButtonElement} */ (ev.currentTarget), `api/triggers/${encodeURIComponent(id)}/${paused ? 'resume' : 'pause'}`, `${paused ? 'Resume' : 'Pause'} ${t.name || id}`)
        },
      },
    })
    if (!paused && t.status !== 'active') toggle.disabled = true
    const fire = el('button', {
      class: `btn${size}`,
      text: 'Fire',
      data: { action: 'fire', id },
      attrs: { type: 'button' },
      on: {
        click: (ev) => {
          ev.stopPropagation()
          void act(/** @type {HTMLButtonElement} */ (ev.currentTarget), `api/triggers/${encodeURIComponent(id)}/fire`, `Fire ${t.name || id}`, (out) => out?.fired?.executionId && `execution ${out.fired.executionId} queued`)
        },
      },
    })
    return [toggle, fire]
  }

  /** @param {any[]} list */
  function renderTriggers(list) {
    const tbody = /** @type {HTMLElement} */ (byId('trigger-table').querySelector('tbody'))
    clear(tbody)
    for (const t of list) {
      if (typeof t.tenantId === 'string') state.tenants.add(t.tenantId)
      if (typeof t.action?.callableName === 'string') state.callables.add(t.action.callableName)
      const id = String(t.triggerId)
      const row = el(
        'tr',
        {
          class: 'clickable',
          data: { id, status: String(t.status) },
          attrs: { tabindex: '0' },
          on: {
            click: () => openDrawer({ kind: 'trigger', id }),
            keydown: (ev) => {
              if (ev.key === 'Enter' && ev.target === ev.currentTarget) openDrawer({ kind: 'trigger', id })
            },
          },
        },
        el('td', { title: id }, el('strong', { class: 'ellipsis', text: t.name || '(unnamed)' })),
        el('td', null, el('span', { class: 'type', text: t.type })),
        el('td', { class: 'mono' }, el('span', { class: 'ellipsis', text: conditionText(t), title: conditionText(t) })),
        el('td', { text: t.tenantId }),
        el('td', null, badge(t.status)),
        el('td', { class: 'num', text: fmtNum(t.fireCount) }),
        el('td', null, timeNode(t.lastFiredAt)),
        el('td', null, timeNode(t.nextFireAt)),
        el('td', { class: 'actions' }, ...triggerButtons(t)),
      )
      if (state.drawer?.kind === 'trigger' && state.drawer.id === id) row.classList.add('selected')
      tbody.append(row)
    }
    byId('trigger-empty').hidden = list.length > 0
    byId('trigger-count').textContent = `${fmtNum(list.length)} trigger${list.length === 1 ? '' : 's'}`
    refreshDatalists()
  }

  function refreshDatalists() {
    for (const [id, set] of /** @type {[string, Set<string>][]} */ ([
      ['tenants', state.tenants],
      ['callables', state.callables],
    ])) {
      const list = byId(id)
      if (list.childElementCount === set.size) continue
      clear(list)
      for (const v of [...set].sort()) list.append(el('option', { attrs: { value: v } }))
    }
  }

  // -- actions --------------------------------------------------------------------------

  /**
   * Sends an action (POST); shows what happened (a refusal as an error
   * that stays until dismissed) and refreshes.
   * @param {HTMLButtonElement | null} button
   * @param {string} path
   * @param {string} what
   * @param {(out: any) => string | false | undefined} [describe]
   * @param {unknown} [body]
   */
  async function act(button, path, what, describe, body) {
    if (button) button.disabled = true
    try {
      const out = await api(path, { method: 'POST', body })
      const extra = describe ? describe(out) : undefined
      toast('ok', `${what}: done${extra ? ` (${extra})` : ''}`)
    } catch (err) {
      toast('error', `${what} refused: ${errorText(err)}`)
    } finally {
      if (button) button.disabled = false
      void refresh()
    }
  }

  // -- the drawer (execution and trigger details) -------------------------------------------

  /** @param {DrawerTarget} target */
  function openDrawer(target) {
    state.drawer = target
    byId('drawer').hidden = false
    byId('drawer-kind').textContent = target.kind
    byId('drawer-id').textContent = target.id
    clear(byId('drawer-body'))
    byId('drawer-body').append(el('p', { class: 'muted', text: 'loading…' }))
    for (const row of document.querySelectorAll('tr.selected')) row.classList.remove('selected')
    for (const row of document.querySelectorAll('tr[data-id]')) {
      if (/** @type {HTMLElement} */ (row).dataset.id === target.id) row.classList.add('selected')
    }
    void loadDrawer().catch((err) => showDrawerError(err))
  }

  function closeDrawer() {
    state.drawer = null
    state.drawerSeq++
    byId('drawer').hidden = true
    for (const row of document.querySelectorAll('tr.selected')) row.classList.remove('selected')
  }

  /** @param {unknown} err */
  function showDrawerError(err) {
    const body = byId('drawer-body')
    clear(body)
    body.append(el('div', { class: 'error-box' }, el('div', { class: 'error-message', text: errorText(err) })))
  }

  async function loadDrawer() {
    const target = state.drawer
    if (target === null) return
    const seq = ++state.drawerSeq
    const path = target.kind === 'execution' ? `api/executions/${encodeURIComponent(target.id)}` : `api/triggers/${encodeURIComponent(target.id)}`
    const data = await api(path)
    if (seq !== state.drawerSeq) return
    const body = byId('drawer-body')
    const scroll = body.scrollTop
    clear(body)
    if (target.kind === 'execution') renderExecution(body, data.execution)
    else renderTrigger(body, data.trigger)
    body.scrollTop = scroll
  }

  /**
   * A definition list of [label, node-or-text] pairs (absent values skipped).
   * @param {[string, Node | string | undefined | null][]} pairs
   */
  function kv(pairs) {
    const dl = el('dl', { class: 'kv' })
    for (const [k, v] of pairs) {
      if (v === undefined || v === null) continue
      dl.append(el('dt', { text: k }), el('dd', null, v))
    }
    return dl
  }

  /**
   * A titled block holding a value as text.
   * @param {string} field
   * @param {string} title
   * @param {unknown} value
   */
  function fieldBlock(field, title, value) {
    return el('section', { class: 'field', data: { field } }, el('h3', { text: title }), el('pre', { class: 'value', text: pretty(value) }))
  }

  /**
   * Text for a kv row, or undefined when absent.
   * @param {unknown} v
   */
  const textOr = (v) => (v === undefined || v === null ? undefined : String(v))

  /** Fields of an execution shown in their own place. */
  const EXECUTION_FIELDS = new Set([
    'executionId', 'tenantId', 'callableName', 'status', 'queuedAt', 'startedAt', 'completedAt', 'attempt', 'triggerId', 'chainDepth', 'chainRoot',
    'targetBindingApplied', 'input', 'output', 'error', 'context', 'config', 'metadata', 'triggerSource', 'bindingResult', 'progress',
  ])

  /**
   * @param {HTMLElement} body
   * @param {any} e
   */
  function renderExecution(body, e) {
    const id = String(e.executionId)
    const cancel = el('button', {
      class: 'btn danger',
      text: 'Cancel',
      data: { action: 'cancel', id },
      attrs: { type: 'button' },
      on: { click: (ev) => void act(/** @type {HTMLButtonElement} */ (ev.currentTarget), `api/executions/${encodeURIComponent(id)}/cancel`, `Cancel ${shortId(id)}`, (out) => (out?.cancelled === false ? 'it had already ended' : undefined)) },
    })
    cancel.disabled = !(e.status === 'queued' || e.status === 'running')
    const retry = el('button', {
      class: 'btn',
      text: 'Retry',
      data: { action: 'retry', id },
      attrs: { type: 'button' },
      on: { click: (ev) => void act(/** @type {HTMLButtonElement} */ (ev.currentTarget), `api/executions/${encodeURIComponent(id)}/retry`, `Retry ${shortId(id)}`, () => 'queued again') },
    })
    retry.disabled = !(e.status === 'failed' || e.status === 'timeout' || e.status === 'cancelled')
    body.append(el('div', { class: 'drawer-actions' }, badge(e.status), cancel, retry))

    if (e.error !== undefined && e.error !== null) {
      const err = e.error
      const meta = [err.category, err.code, err.attempt !== undefined && err.attempt !== null ? `attempt ${err.attempt}` : null].filter((x) => x !== undefined && x !== null && x !== '').join(' · ')
      body.append(
        el(
          'section',
          { class: 'field', data: { field: 'error' } },
          el('h3', { text: 'Error' }),
          el(
            'div',
            { class: 'error-box' },
            el('div', { class: 'error-message', text: typeof err.message === 'string' ? err.message : pretty(err) }),
            meta ? el('div', { class: 'error-meta', text: meta }) : null,
            el('details', null, el('summary', { text: 'full error' }), el('pre', { class: 'value', text: pretty(err) })),
          ),
        ),
      )
    }

    const started = timeOf(e.startedAt)
    const ended = timeOf(e.completedAt)
    const duration = Number.isNaN(started) ? NaN : (Number.isNaN(ended) ? (e.status === 'running' ? serverNow() : NaN) : ended) - started
    body.append(
      kv([
        ['Tenant', textOr(e.tenantId)],
        ['Callable', textOr(e.callableName)],
        ['Attempt', textOr(e.attempt)],
        ['Mode', textOr(e.config?.mode)],
        ['Priority', textOr(e.config?.priority)],
        ['Timeout', typeof e.config?.timeoutMs === 'number' ? fmtDuration(e.config.timeoutMs) : undefined],
        ['Queued', typeof e.queuedAt === 'string' ? `${fmtAbs(e.queuedAt)} (${fmtRel(e.queuedAt)})` : undefined],
        ['Started', typeof e.startedAt === 'string' ? fmtAbs(e.startedAt) : undefined],
        ['Completed', typeof e.completedAt === 'string' ? fmtAbs(e.completedAt) : undefined],
        ['Duration', Number.isNaN(duration) ? undefined : fmtDuration(duration)],
        ['Trigger', e.triggerId ? el('span', { class: 'mono', text: e.triggerId }) : undefined],
        ['Chain', e.chainDepth !== undefined ? `depth ${e.chainDepth}${e.chainRoot ? ` · root ${e.chainRoot}` : ''}` : undefined],
        ['Binding applied', e.config?.targetBinding || e.targetBindingApplied ? String(Boolean(e.targetBindingApplied)) : undefined],
        ['Progress', e.progress !== undefined && e.progress !== null ? progressNode(e.progress) : undefined],
      ]),
    )

    /** @type {[string, string][]} */
    const blocks = [
      ['input', 'Input'],
      ['output', 'Output'],
      ['progress', 'Progress'],
      ['context', 'Context'],
      ['triggerSource', 'Trigger source'],
      ['bindingResult', 'Binding result'],
      ['metadata', 'Metadata'],
      ['config', 'Config'],
    ]
    for (const [field, title] of blocks) {
      if (e[field] === undefined) continue
      if (field === 'context' && e.context && typeof e.context === 'object' && Object.keys(e.context).length === 0) continue
      body.append(fieldBlock(field, title, e[field]))
    }
    const other = Object.fromEntries(Object.entries(e).filter(([k]) => !EXECUTION_FIELDS.has(k)))
    if (Object.keys(other).length > 0) body.append(fieldBlock('other', 'Other fields', other))
    body.append(el('details', { class: 'field' }, el('summary', { text: 'whole record (JSON)' }), el('pre', { class: 'value', text: pretty(e) })))
  }

  /**
   * @param {HTMLElement} body
   * @param {any} t
   */
  function renderTrigger(body, t) {
    body.append(el('div', { class: 'drawer-actions' }, badge(t.status), ...triggerButtons(t, false)))
    body.append(
      kv([
        ['Name', textOr(t.name)],
        ['Description', textOr(t.description)],
        ['Type', textOr(t.type)],
        ['Condition', conditionText(t)],
        ['Tenant', textOr(t.tenantId)],
        ['Fires', fmtNum(t.fireCount) + (typeof t.maxFires === 'number' ? ` of ${fmtNum(t.maxFires)}` : '')],
        ['Last fired', typeof t.lastFiredAt === 'string' ? `${fmtAbs(t.lastFiredAt)} (${fmtRel(t.lastFiredAt)})` : undefined],
        ['Next fire', typeof t.nextFireAt === 'string' ? `${fmtAbs(t.nextFireAt)} (${fmtRel(t.nextFireAt)})` : undefined],
        ['Cooldown', typeof t.cooldownMs === 'number' ? fmtDuration(t.cooldownMs) : undefined],
        ['Window', t.startAt || t.endAt ? `${t.startAt ? fmtAbs(t.startAt) : '…'} → ${t.endAt ? fmtAbs(t.endAt) : '…'}` : undefined],
        ['Created', typeof t.createdAt === 'string' ? fmtAbs(t.createdAt) : undefined],
        ['Updated', typeof t.updatedAt === 'string' ? fmtAbs(t.updatedAt) : undefined],
      ]),
    )
    body.append(fieldBlock('condition', 'Condition', t.condition ?? {}))
    body.append(fieldBlock('action', 'Action', t.action ?? {}))
    body.append(el('details', { class: 'field' }, el('summary', { text: 'whole record (JSON)' }), el('pre', { class: 'value', text: pretty(t) })))
  }

  // -- explain -------------------------------------------------------------------------

  /** @param {SubmitEvent} ev */
  async function explain(ev) {
    ev.preventDefault()
    const form = /** @type {HTMLFormElement} */ (ev.currentTarget)
    const fd = new FormData(form)
    const kind = String(fd.get('kind'))
    const tenantId = String(fd.get('tenantId') ?? '').trim()
    /** @type {any} */
    let body
    if (kind === 'metric') {
      body = { metric: { tenantId, name: String(fd.get('name') ?? '').trim(), value: Number(fd.get('value')) } }
    } else {
      const text = String(fd.get('data') ?? '').trim()
      let data
      try {
        data = text === '' ? undefined : JSON.parse(text)
      } catch (err) {
        toast('error', `Explain: the data is not valid JSON (${err instanceof Error ? err.message : String(err)})`)
        return
      }
      body = { event: { tenantId, type: String(fd.get('type') ?? '').trim(), data } }
      if (kind === 'lifecycle') body.source = 'lifecycle'
    }
    const button = /** @type {HTMLButtonElement} */ (form.querySelector('button[type=submit]'))
    button.disabled = true
    try {
      const out = await api('api/explain', { method: 'POST', body })
      renderExplain(out.explanations)
    } catch (err) {
      toast('error', `Explain refused: ${errorText(err)}`)
    } finally {
      button.disabled = false
    }
  }

  /** @param {any[]} list */
  function renderExplain(list) {
    const table = byId('explain-table')
    const tbody = /** @type {HTMLElement} */ (table.querySelector('tbody'))
    clear(tbody)
    for (const x of list) {
      const would = x.wouldFire === true
      tbody.append(
        el(
          'tr',
          { data: { id: String(x.triggerId), verdict: would ? 'yes' : 'no' } },
          el('td', { title: String(x.triggerId) }, el('strong', { text: x.triggerName || '(unnamed)' })),
          el('td', null, el('span', { class: 'type', text: x.triggerType })),
          el('td', null, badge(x.status)),
          el('td', null, el('span', { class: 'badge', text: would ? 'would fire' : 'would not fire', data: { verdict: would ? 'yes' : 'no' } })),
          el('td', { class: 'reason', text: x.reason ?? (would ? '—' : '') }),
          el('td', { class: 'mono wrap' }, x.detail === null || x.detail === undefined ? '' : compact(x.detail, 200)),
        ),
      )
    }
    byId('explain-results').hidden = false
    table.hidden = list.length === 0
    byId('explain-empty').hidden = list.length > 0
  }

  function syncExplainKind() {
    const form = /** @type {HTMLFormElement} */ (byId('explain-form'))
    const kind = String(new FormData(form).get('kind'))
    for (const node of form.querySelectorAll('[data-for]')) {
      const el = /** @type {HTMLElement} */ (node)
      el.hidden = (el.dataset.for === 'metric') !== (kind === 'metric')
    }
  }

  // -- breakdown (per-callable and per-tenant figures, when stats() has them) -------------

  /** @param {any} stats */
  function renderBreakdown(stats) {
    const maps = /** @type {[string, string][]} */ ([
      ['callables', 'By callable'],
      ['tenants', 'By tenant'],
    ]).filter(([k]) => stats[k] && typeof stats[k] === 'object' && !Array.isArray(stats[k]))
    byId('tab-breakdown').hidden = maps.length === 0
    if (maps.length === 0) return
    const root = byId('breakdown')
    clear(root)
    for (const [key, title] of maps) {
      const entries = Object.entries(stats[key])
      /** @type {string[]} */
      const columns = []
      /** @type {Record<string, unknown>[]} */
      const rows = []
      for (const [, figures] of entries) {
        /** @type {Record<string, unknown>} */
        const flat = {}
        if (figures && typeof figures === 'object') {
          for (const [k, v] of Object.entries(figures)) {
            if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k2, v2] of Object.entries(v)) flat[`${k} ${k2}`] = v2
            else flat[k] = v
          }
        } else flat.value = figures
        for (const k of Object.keys(flat)) if (!columns.includes(k)) columns.push(k)
        rows.push(flat)
      }
      const table = el('table', { class: 'grid' }, el('thead', null, el('tr', null, el('th', { text: key === 'callables' ? 'Callable' : 'Tenant' }), ...columns.map((c) => el('th', { class: 'num', text: c })))))
      const tbody = el('tbody')
      entries.forEach(([name], i) => {
        tbody.append(el('tr', null, el('td', { text: name }), ...columns.map((c) => el('td', { class: 'num', text: typeof rows[i][c] === 'number' ? fmtNum(rows[i][c]) : compact(rows[i][c] ?? '—', 30) }))))
      })
      table.append(tbody)
      root.append(el('section', { class: 'breakdown' }, el('h3', { text: title }), el('div', { class: 'table-wrap' }, table)))
    }
  }

  // -- polling ---------------------------------------------------------------------------

  async function loadStats() {
    const last = state.samples.length > 0 ? state.samples[state.samples.length - 1].t : ''
    const data = await api(`api/stats?since=${last}`)
    if (typeof data.now === 'number') state.skew = data.now - Date.now()
    state.stats = data.stats
    const cutoff = data.now - 600_000
    state.samples = state.samples.concat(data.samples).filter((s) => s.t >= cutoff)
    renderTiles(data.stats)
    renderCharts()
    renderBreakdown(data.stats)
    for (const key of ['tenants', 'callables']) {
      const map = data.stats[key]
      if (map && typeof map === 'object') for (const name of Object.keys(map)) (key === 'tenants' ? state.tenants : state.callables).add(name)
    }
  }

  /** Reloads what is on screen. */
  async function refresh() {
    /** @type {Promise<unknown>[]} */
    const work = [loadStats()]
    if (state.tab === 'executions' && !state.execPaged) work.push(loadExecutions())
    if (state.tab === 'triggers') work.push(loadTriggers())
    if (state.drawer !== null) work.push(loadDrawer().catch((err) => showDrawerError(err)))
    const results = await Promise.allSettled(work)
    const failed = results.find((r) => r.status === 'rejected')
    if (failed && failed.status === 'rejected') setLive(false, errorText(failed.reason))
    else setLive(true)
  }

  async function loop() {
    try {
      await refresh()
    } finally {
      setTimeout(loop, POLL_MS)
    }
  }

  /** @param {string} tab */
  function selectTab(tab) {
    state.tab = tab
    for (const button of document.querySelectorAll('[role=tab]')) {
      const b = /** @type {HTMLElement} */ (button)
      b.setAttribute('aria-selected', String(b.dataset.tab === tab))
    }
    for (const name of ['executions', 'triggers', 'explain', 'breakdown']) byId(`panel-${name}`).hidden = name !== tab
    void refresh()
  }

  // -- start ------------------------------------------------------------------------------

  /**
   * Applies a filter form now (submit) and shortly after typing.
   * @param {string} id
   * @param {() => Promise<void>} load
   */
  function wireFilters(id, load) {
    const form = /** @type {HTMLFormElement} */ (byId(id))
    /** @type {ReturnType<typeof setTimeout> | null} */
    let timer = null
    const run = () => {
      if (timer !== null) clearTimeout(timer)
      timer = null
      load().catch((err) => setLive(false, errorText(err)))
    }
    form.addEventListener('submit', (ev) => {
      ev.preventDefault()
      run()
    })
    form.addEventListener('change', run)
    form.addEventListener('input', () => {
      if (timer !== null) clearTimeout(timer)
      timer = setTimeout(run, 300)
    })
    form.addEventListener('reset', () => setTimeout(run, 0))
  }

  async function start() {
    for (const button of document.querySelectorAll('[role=tab]')) {
      button.addEventListener('click', () => selectTab(String(/** @type {HTMLElement} */ (button).dataset.tab)))
    }
    for (const button of document.querySelectorAll('[data-window]')) {
      button.addEventListener('click', () => {
        state.windowSec = Number(/** @type {HTMLElement} */ (button).dataset.window)
        for (const b of document.querySelectorAll('[data-window]')) b.classList.toggle('on', b === button)
        renderCharts()
      })
    }
    wireFilters('exec-filters', () => loadExecutions())
    byId('exec-more').addEventListener('click', () => void loadExecutions(true).catch((err) => setLive(false, errorText(err))))
    wireFilters('trigger-filters', loadTriggers)
    const explainForm = byId('explain-form')
    explainForm.addEventListener('submit', (ev) => void explain(/** @type {SubmitEvent} */ (ev)))
    explainForm.addEventListener('change', syncExplainKind)
    byId('drawer-close').addEventListener('click', closeDrawer)
    byId('toast-close').addEventListener('click', () => (byId('toast').hidden = true))
    document.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && state.drawer !== null) closeDrawer()
    })
    window.addEventListener('resize', () => renderCharts())
    try {
      state.info = await api('api/info')
      const mode = byId('mode')
      mode.hidden = false
      mode.textContent = state.info.readOnly ? 'read-only' : 'actions enabled'
      mode.classList.toggle('readonly', Boolean(state.info.readOnly))
      mode.title = state.info.readOnly ? 'No authorize option: every action is refused' : 'Actions are checked by the authorize option'
    } catch (err) {
      setLive(false, errorText(err))
    }
    void loop()
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', () => void start())
  else void start()
})()
