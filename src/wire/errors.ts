import { PatrolError } from '../shared/errors.js';

/** Bad input to a wire helper that is not on the hot path (those report counts instead). */
export class WireError extends PatrolError {}
