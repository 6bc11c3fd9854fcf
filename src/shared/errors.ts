/** Base of every error patrol raises on purpose: a stable `code` the CLI and API can rely on. */
export class PatrolError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
