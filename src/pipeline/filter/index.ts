/** The filter language shared by `droptrace stream --filter` and the TUI's `/` (README, "Filtering"). */
export { FIELD_NAMES, FilterError, formatFilter, parseFilter } from './parse.js';
export type { Field, Node, Op } from './parse.js';
export { compile, compileFilter } from './match.js';
export type { Filter, Predicate, Subject } from './match.js';
export { FilterGate, subjectOfDrop } from './gate.js';
export { FILTER_HELP, filterOption } from './usage.js';
