// Attribution (issue 7): rules (RE2 patterns + decision trees) turn failures into ranked causes
// with an evidence chain. See docs/rules.md.
export * from './diagnostics.js';
export * from './units.js';
export * from './catalogue.js';
export * from './pattern.js';
export * from './tree.js';
export * from './loader.js';
export * from './facts.js';
export * from './history.js';
export * from './evidence.js';
export * from './event-fields.js';
export * from './event-view.js';
export * from './scope.js';
export * from './findings.js';
export * from './trigger-index.js';
export * from './rule-index.js';
export * from './kernel-join.js';
export * from './line-prefilter.js';
export * from './engine.js';
export * from './kmsg.js';
export * from './tail.js';
export * from './predictions.js';
