// Type tests of EnactError / isEnactError.
import { EnactError, isEnactError, ErrorCodes, type ErrorCode } from 'enact-background'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
function assertType<T extends true>(_: T) {}

export function errors(err: unknown) {
  if (err instanceof EnactError) assertType<Equal<typeof err.code, ErrorCode>>(true)
  if (isEnactError(err)) {
    assertType<Equal<typeof err.code, ErrorCode>>(true)
    const e: Error = err
    return e
  }
  // @ts-expect-error: err is unknown until narrowed
  err.code
  // @ts-expect-error: not an error code
  new EnactError('ENACT_NOPE', 'm')
  const codes: readonly ErrorCode[] = ErrorCodes
  return new EnactError('ENACT_NOT_FOUND', 'triggerId: no trigger "x"', { cause: codes })
}
