/**
 * Enrichment: a chain of small steps, each adding fields to a drop (pod by netns, pod by IP,
 * DNS name ...). A step that throws is counted in `stats.enrichment_failures`, never fatal.
 * Steps run on the hot path: lookups must be index hits, never scans.
 */
import type { DropEvent } from '../pipeline/events.js';

export interface Enricher {
  readonly name: string;
  /** Adds fields to `ev` in place. */
  enrich(ev: DropEvent): void;
  /** Releases watches, timers, sockets. */
  close?(): void | Promise<void>;
}
