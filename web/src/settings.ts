// What the user chose, shared by the pages: the window of the figures (10 s, 1 m, 5 m).
export const WINDOWS = ['10s', '1m', '5m'] as const;
export type WindowName = (typeof WINDOWS)[number];
export const WINDOW_MS: Record<WindowName, number> = { '10s': 10_000, '1m': 60_000, '5m': 300_000 };

type Listener = () => void;
const listeners = new Set<Listener>();

function stored(): WindowName {
  try {
    const w = localStorage.getItem('patrol.window');
    if (w && (WINDOWS as readonly string[]).includes(w)) return w as WindowName;
  } catch {
    /* storage off */
  }
  return '1m';
}

let current: WindowName = stored();

export const getWindow = (): WindowName => current;

export function setWindow(w: WindowName): void {
  if (w === current) return;
  current = w;
  try {
    localStorage.setItem('patrol.window', w);
  } catch {
    /* storage off */
  }
  for (const l of listeners) l();
}

/** Returns the unsubscribe function. */
export function onWindow(l: Listener): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}
