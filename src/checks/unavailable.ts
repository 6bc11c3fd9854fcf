// The error of a value that could not be read: the check is `unknown`, with the message as
// evidence. Its own module, so the evaluator and the trends (which the evaluator calls) share it
// without importing each other at load time.
import { PatrolError } from '../shared/errors.js';

/** A value that could not be obtained: the check is `unknown`, with this message as evidence. */
export class Unavailable extends PatrolError {
  constructor(message: string) {
    super('E_CHECK_UNAVAILABLE', message);
  }
}
