// Constants shared by the agent's API server and the CLI clients. No runtime dependencies, so the
// CLI can import it without loading fastify.

/** Where the agent listens and the CLI connects unless told otherwise. */
export const DEFAULT_SOCKET = '/run/patrol/patrol.sock';

/** The socket the CLI uses when --socket is not given: $PATROL_SOCKET, else DEFAULT_SOCKET. */
export function defaultSocket(env: NodeJS.ProcessEnv = process.env): string {
  const s = env.PATROL_SOCKET;
  return s !== undefined && s !== '' ? s : DEFAULT_SOCKET;
}

/** Default TCP listen host: loopback only. */
export const DEFAULT_TCP_HOST = '127.0.0.1';

/** Per-client bound on event-stream bytes queued in the agent before events are dropped. */
export const DEFAULT_EVENTS_BUFFER_BYTES = 1 << 20;

export const API_PREFIX = '/v1';
