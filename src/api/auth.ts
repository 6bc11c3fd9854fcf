// Bearer-token check for the TCP listener. The unix socket needs none: its mode (0600, root)
// is the access control.
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Returns a checker of `Authorization` header values against `token`. Both sides are hashed
 *  to equal-length digests and compared with timingSafeEqual, so the time taken reveals neither
 *  the token's content nor its length. */
export function bearerChecker(token: string): (header: string | undefined) => boolean {
  const want = digest(token);
  return (header) => {
    if (header === undefined) return false;
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (m === null) return false;
    return timingSafeEqual(digest(m[1]!), want);
  };
}
