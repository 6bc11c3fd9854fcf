export * from './errors.js';
export * from './probes.js';
export * from './sensor.js';
export { native, ADDON_PATH } from './native.js';
export type { RingOptions, RingStats } from './native.js';
export { DEFAULT_PULL_POLICY, type PullPolicy } from './ring-pull.js';
export { boottimeNs, WallClock } from './clock.js';
