// Numbers for people: bytes, percentages, durations, times.
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let x = Math.abs(n);
  while (x >= 1024 && i < u.length - 1) {
    x /= 1024;
    i++;
  }
  return `${n < 0 ? '-' : ''}${i === 0 ? x.toFixed(0) : x < 10 ? x.toFixed(1) : x.toFixed(0)} ${u[i]}`;
}

export const rate = (n: number | null | undefined): string => (n === null || n === undefined ? '—' : `${bytes(n)}/s`);

export function pct(n: number | null | undefined, digits = 1): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '—' : `${n.toFixed(digits)}%`;
}

/** 1.2 s, 3 m 4 s, 2 h 5 m, 3 d 4 h */
export function dur(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${Math.floor(s % 60)} s`;
  const hh = Math.floor(m / 60);
  if (hh < 48) return `${hh} h ${m % 60} m`;
  return `${Math.floor(hh / 24)} d ${hh % 24} h`;
}

export const durNs = (ns: number | null | undefined): string => (ns === null || ns === undefined ? '—' : dur(ns / 1e6));

/** Local wall time with ms: 14:03:22.123 */
export function clock(t: string | number | null | undefined): string {
  if (t === null || t === undefined) return '—';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return '—';
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** Local date and time: 2025-01-02 14:03:22 */
export function datetime(t: string | number | null | undefined): string {
  if (t === null || t === undefined) return '—';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return '—';
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export const ago = (t: string | number | null | undefined): string => {
  if (t === null || t === undefined) return '—';
  const ms = Date.now() - new Date(t).getTime();
  return Number.isFinite(ms) ? `${dur(Math.max(0, ms))} ago` : '—';
};

export const num = (n: number | null | undefined): string => (n === null || n === undefined ? '—' : n.toLocaleString('en-US'));

const SIGNALS: Record<number, string> = {
  1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE', 9: 'SIGKILL',
  10: 'SIGUSR1', 11: 'SIGSEGV', 12: 'SIGUSR2', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM', 24: 'SIGXCPU', 25: 'SIGXFSZ', 31: 'SIGSYS',
};
export const signalName = (n: number): string => SIGNALS[n] ?? `signal ${n}`;

/** How a process ended: "exit 0", "exit 3", "SIGSEGV (core)". */
export function exitText(code: number | null | undefined, signal: number | null | undefined, core?: boolean | null): string {
  if (signal !== null && signal !== undefined) return `${signalName(signal)}${core ? ' (core)' : ''}`;
  if (code !== null && code !== undefined) return `exit ${code}`;
  return '—';
}

/** An argument as a shell would need it: quoted when it has spaces or specials. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
