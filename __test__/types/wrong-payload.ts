// Must NOT type-check (__test__/ergonomics.test.js asserts the error):
// once() types its listener's payload by event name.
import { BackgroundEngine } from '../..'

const engine = new BackgroundEngine()
engine.once('trigger.fired', (ev) => void ev.status)
