/** What bench/userspace.ts prints (one JSON line per mode), as bench/run.ts reads it. */
export interface RateFigures {
  events: number;
  wall_s: number | null;
  cpu_s: number | null;
  events_per_s: number;
  events_per_cpu_s: number;
}

export interface UserspaceRate {
  type: 'bench-userspace-rate';
  batch_records: number;
  record_bytes_avg: number | null;
  each_stage_in_own_process: true;
  /** the figure: decode + classify + enrich */
  decode_classify_enrich: RateFigures;
  stages: { decode: RateFigures; classify: RateFigures; full_stream_path: RateFigures };
  plus_ndjson: RateFigures & { ndjson_bytes_per_event?: number | null };
  plus_tui_store: RateFigures;
}

export interface UserspaceRss {
  type: 'bench-userspace-rss';
  sink: string;
  stages: string;
  flows: number;
  events: number;
  lines: number;
  folded_drops: number;
  reconciles: number;
  decode_errors: number;
  seconds: number | null;
  cpu_s: number | null;
  baseline_rss_mb: number | null;
  heap_used_mb: number | null;
  retained_heap_mb: number | null;
  peak_rss_mb: number | null;
  end_rss_mb: number | null;
  store_total?: number;
  store_groups?: number;
}

/** A measurement, or why it is missing. */
export type Measured<T> = T | { error: string };

export interface UserspaceResult {
  rate: Measured<UserspaceRate>;
  rss: Measured<UserspaceRss>;
  rss_without_folder: Measured<UserspaceRss>;
}
