// Node facts: procfs, sysfs, statfs and cgroupfs readers. A source-tier stage: anything may import it.
export * from './proc.js';
export * from './cpu.js';
export * from './memory.js';
export * from './load.js';
export * from './psi.js';
export * from './disk.js';
export * from './net.js';
export * from './cgroup.js';
export * from './memory-limit.js';
