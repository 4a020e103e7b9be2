/**
 * The kernel lab: famous drop scenarios reproduced in throw-away network namespaces
 * (`droptrace lab`). Each scenario says which drops a tracer must see (`LabResult.expect`).
 */
import { conntrackClash, conntrackFull, conntrackInvalid } from './conntrack.js';
import { martianSourceScenario, rpFilterScenario } from './martian.js';
import { neighOverflow } from './neigh.js';
import type { Scenario } from './types.js';

export type { LabExpectation, LabFlow, LabOptions, LabResult, Scenario } from './types.js';

export const scenarios: Scenario[] = [neighOverflow, conntrackFull, conntrackInvalid, conntrackClash, martianSourceScenario, rpFilterScenario];

export function findScenario(name: string): Scenario | undefined {
  return scenarios.find((s) => s.name === name);
}
