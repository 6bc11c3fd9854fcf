// Who may use the dashboard: whoever opened the one-time URL. Its token is spent on first use
// and traded for a session cookie (HttpOnly, SameSite=Strict), so the URL left in a terminal
// or shell history is worthless once used. Secrets are compared as SHA-256 digests with
// timingSafeEqual (neither content nor length leaks through timing).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const COOKIE_NAME = 'patrol_dashboard';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
const secret = (): string => randomBytes(32).toString('base64url');

export type TokenResult = { ok: true; cookie: string } | { ok: false; reason: 'spent' | 'wrong' };

export class Sessions {
  readonly token: string;
  private readonly tokenDigest: Buffer;
  private spent = false;
  /** digests of the session ids handed out (one per use of the token: at most one) */
  private readonly sessions: Buffer[] = [];

  constructor(token: string = secret()) {
    this.token = token;
    this.tokenDigest = digest(token);
  }

  /** Trades the one-time token for a session; the Set-Cookie header value on success. */
  redeem(token: string): TokenResult {
    if (!timingSafeEqual(digest(token), this.tokenDigest)) return { ok: false, reason: 'wrong' };
    if (this.spent) return { ok: false, reason: 'spent' };
    this.spent = true;
    const id = secret();
    this.sessions.push(digest(id));
    return { ok: true, cookie: `${COOKIE_NAME}=${id}; HttpOnly; SameSite=Strict; Path=/` };
  }

  /** Whether a Cookie header carries a valid session. */
  valid(cookieHeader: string | undefined): boolean {
    if (cookieHeader === undefined || this.sessions.length === 0) return false;
    for (const part of cookieHeader.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0 || part.slice(0, eq).trim() !== COOKIE_NAME) continue;
      const d = digest(part.slice(eq + 1).trim());
      for (const s of this.sessions) if (timingSafeEqual(d, s)) return true;
    }
    return false;
  }
}
