const path = require('path')
const { applyTransform } = require('..')

const fixtures = path.join(__dirname, '../fixtures/enact-core-0.0.2')
const cases = require(path.join(fixtures, 'transforms.json'))

describe('applyTransform', () => {
  test.each(cases.map((c) => [c.transform, JSON.stringify(c.value), c]))('%s of %s agrees with enact-core', (_t, _v, c) => {
    const run = () => applyTransform(c.value, c.transform, c.maxLength, c.jsonPath)
    if (c.error) {
      expect(run).toThrow(expect.objectContaining({ code: 'ENACT_TRANSFORM' }))
    } else {
      expect(run()).toBe(c.result)
    }
  })

  test('truncate and first_line count characters, not bytes', () => {
    expect(applyTransform('日本語のテキストです', 'truncate', 6)).toBe('日本語...')
    expect(applyTransform('héllo wörld', 'truncate', 11)).toBe('héllo wörld')
    expect(applyTransform('🎉🎉🎉🎉🎉', 'truncate', 4)).toBe('🎉...')
    expect(applyTransform('çà et là, voilà\nsuite', 'first_line', 8)).toBe('çà et...')
  })

  test('a wildcard path yields each element', () => {
    const doc = JSON.stringify({ items: [{ id: 'a' }, { id: 2 }, { other: true }] })
    expect(applyTransform(doc, 'json_extract', null, '$.items[*].id')).toBe('["a",2]')
  })

  test('bad arguments name the field', () => {
    expect(() => applyTransform('x', 'shout')).toThrow(expect.objectContaining({ code: 'ENACT_INVALID_EXECUTION', message: expect.stringMatching(/^transform: /) }))
    expect(() => applyTransform('x', 'truncate', -1)).toThrow(expect.objectContaining({ message: expect.stringMatching(/^maxLength: /) }))
    expect(() => applyTransform('{}', 'json_extract', null, 'a.b')).toThrow(expect.objectContaining({ code: 'ENACT_TRANSFORM', message: expect.stringMatching(/^jsonPath: /) }))
  })
})
