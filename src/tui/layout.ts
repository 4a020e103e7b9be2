/**
 * How the screen's rows are shared. One row is left unused: Ink redraws a frame as tall as the
 * terminal by clearing the whole screen each time (flicker); one row less lets it rewrite only
 * what changed.
 */
export interface Layout {
  header: number;
  tables: number;
  groups: number;
  detail: number;
  /** rows between header and footer (help uses all of them) */
  body: number;
}

/**
 * Rows and columns from which the detail pane is open before any key: the first screen then
 * answers (kind, pods, flows, table fill, what to do) with at least four group rows and a
 * detail of eight lines beside it; 80x24 qualifies. Below that the groups alone fit better.
 */
export const AUTO_DETAIL_ROWS = 22;
export const AUTO_DETAIL_COLUMNS = 60;

/** Whether the detail pane is on screen: the user's choice (Enter, Esc), else whether there is room. */
export function detailShown(choice: boolean | null, columns: number, rows: number): boolean {
  return choice ?? (rows >= AUTO_DETAIL_ROWS && columns >= AUTO_DETAIL_COLUMNS);
}

/**
 * `wantedTables`/`wantedDetail`/`wantedGroups`: lines those sections would fill with unlimited
 * room. Rows the groups leave empty go to the detail pane (a few groups, a long detail).
 */
export function layoutFor(rows: number, detailOpen: boolean, wantedTables: number, wantedDetail: number, wantedGroups = Infinity): Layout {
  const h = Math.max(4, rows - 1);
  const header = h >= 10 ? 3 : 2;
  const body = h - header - 1;
  let tables: number;
  let detail = 0;
  if (!detailOpen) {
    tables = Math.min(wantedTables, body >= 40 ? 12 : body >= 18 ? 7 : body >= 12 ? 5 : body >= 9 ? 3 : 0);
  } else {
    tables = Math.min(wantedTables, body >= 40 ? 10 : body >= 24 ? 7 : body >= 15 ? 4 : body >= 12 ? 2 : 0);
    detail = Math.min(wantedDetail, Math.max(3, Math.floor((body - tables) * 0.6)));
  }
  // the group table keeps its title, column names and at least one row
  const minGroups = Math.min(3, body - tables);
  if (body - tables - detail < minGroups) detail = Math.max(0, body - tables - minGroups);
  const spare = body - tables - detail - Math.max(minGroups, wantedGroups);
  if (detailOpen && spare > 0) detail += Math.min(spare, wantedDetail - detail);
  return { header, tables, groups: body - tables - detail, detail, body };
}
