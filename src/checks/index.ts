// Checks stage: the inspection DSL (lexer → parser → checker → evaluator), the executor and the
// collectors. See docs/dsl.md.
export * from './diagnostics.js';
export * from './ast.js';
export { lex, type Token } from './lexer.js';
export { parse, parseExpression, KEYWORDS, MAX_DEPTH } from './parser.js';
export { printExpr, printProgram, printStmt } from './printer.js';
export * from './catalogue.js';
export * from './checker.js';
export * from './units.js';
export * from './compile.js';
export * from './sources.js';
export * from './predicate.js';
export * from './event-fields.js';
export * from './aggregates.js';
export * from './counters.js';
export * from './evaluator.js';
export * from './executor.js';
export * from './clock.js';
export * from './collectors.js';
export * from './gates.js';
