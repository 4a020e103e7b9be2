/**
 * Imported before Ink and React (first import of command.ts): React picks its build when first
 * loaded, by NODE_ENV. The development build times every component render into the global
 * performance timeline (performance.measure, with a diff of the props: the whole snapshot) —
 * measured under a flood: a quarter of the CPU, and entries the timeline keeps for good, so
 * RSS grew without bound. droptrace never wants it, whatever NODE_ENV the shell has.
 */
process.env.NODE_ENV = 'production';
