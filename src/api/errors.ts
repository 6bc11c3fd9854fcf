// Errors a route throws for the client: fastify's error handler answers with their statusCode.
import { PatrolError } from '../shared/errors.js';

/** An error the client caused or can act on; fastify's error handler uses statusCode. */
export class ApiRequestError extends PatrolError {
  constructor(code: string, message: string, readonly statusCode: number) {
    super(code, message);
  }
}
