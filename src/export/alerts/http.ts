// One HTTP POST with a deadline, its failure worded for a log line and classified: a receiver
// that refuses the request itself (4xx other than 408 and 429) will refuse it again, so it is
// not retried; everything else (connection refused, timeout, 5xx) is.
import { DeliveryError } from './types.js';

export async function postJson(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'patrol', ...headers },
      body,
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
  } catch (e) {
    throw new DeliveryError(`${url}: ${describe(e)}`, true);
  }
  // the body is read (and bounded) so the connection can be reused, and to quote it on failure
  let text = '';
  try {
    text = (await res.text()).slice(0, 300);
  } catch {
    /* the status says enough */
  }
  if (res.ok) return;
  const retry = !(res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429);
  throw new DeliveryError(`${url}: HTTP ${res.status}${text ? `: ${text.replace(/\s+/g, ' ').trim()}` : ''}`, retry);
}

function describe(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
  return err.cause?.code ?? err.cause?.message ?? err.message;
}
