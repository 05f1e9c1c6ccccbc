// @ts-check
'use strict'
// Headless Chromium for the dashboard's browser test and its screenshot:
// Debian's `chromium` package (CI's .ci/run installs it when missing),
// driven by playwright-core, which downloads no browser of its own. Each
// launch gets a fresh profile in a temporary directory, removed on close.

const fs = require('fs')
const os = require('os')
const path = require('path')

/** Where Chromium is: $CHROMIUM_PATH, else Debian's /usr/bin/chromium. */
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage']

/**
 * Launches headless Chromium with a fresh profile; `close()` ends it and
 * removes the profile. Throws, saying how to install it, when Chromium
 * is missing.
 * @param {{ width?: number, height?: number }} [viewport]
 * @returns {Promise<{ context: import('playwright-core').BrowserContext, page: import('playwright-core').Page, close: () => Promise<void> }>}
 */
async function launchChromium(viewport = { width: 1280, height: 800 }) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's chromium package (apt-get install -y chromium; .ci/run does this) or set CHROMIUM_PATH`)
  }
  const { chromium } = require('playwright-core')
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'enact-chromium-'))
  let context
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport, timeout: 30_000 })
  } catch (err) {
    fs.rmSync(profile, { recursive: true, force: true })
    throw err
  }
  const page = context.pages()[0] ?? (await context.newPage())
  const close = async () => {
    try {
      await context.close()
    } finally {
      fs.rmSync(profile, { recursive: true, force: true })
    }
  }
  return { context, page, close }
}

module.exports = { launchChromium, CHROMIUM, ARGS }
