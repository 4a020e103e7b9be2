/**
 * How rows are shared, and when the detail pane is open before any key: the first screen
 * answers where there is room, and a small terminal keeps the groups.
 */
import { describe, expect, it } from 'vitest';
import { AUTO_DETAIL_COLUMNS, AUTO_DETAIL_ROWS, detailShown, layoutFor } from '../../src/tui/layout.js';

describe('detailShown', () => {
  it('opens by itself from 22 rows and 60 columns (80x24 and 120x40 do), never below', () => {
    expect([AUTO_DETAIL_ROWS, AUTO_DETAIL_COLUMNS]).toEqual([22, 60]);
    expect(detailShown(null, 80, 24)).toBe(true);
    expect(detailShown(null, 120, 40)).toBe(true);
    expect(detailShown(null, 80, 21)).toBe(false);
    expect(detailShown(null, 59, 40)).toBe(false);
  });

  it('follows the choice made with Enter or Esc, whatever the size', () => {
    expect(detailShown(false, 120, 40)).toBe(false);
    expect(detailShown(true, 40, 10)).toBe(true);
  });
});

describe('layoutFor', () => {
  it('gives the rows a few groups leave empty to the detail pane, up to what it wants', () => {
    // 120x40: 39 rows; header 3, footer 1, body 35; tables 7 while the pane is open
    expect(layoutFor(40, true, 7, 16)).toEqual({ header: 3, tables: 7, groups: 12, detail: 16, body: 35 });
    expect(layoutFor(40, true, 7, 25, 4)).toEqual({ header: 3, tables: 7, groups: 4, detail: 24, body: 35 });
    // a short detail leaves the rest to the groups
    expect(layoutFor(40, true, 7, 10, 4)).toEqual({ header: 3, tables: 7, groups: 18, detail: 10, body: 35 });
    // closed: the groups take everything, wanted or not
    expect(layoutFor(40, false, 7, 25, 4)).toEqual({ header: 3, tables: 7, groups: 28, detail: 0, body: 35 });
  });

  it('at 80x24 keeps the title, the column names and four groups beside nine lines of detail', () => {
    expect(layoutFor(24, true, 7, 30, 6)).toEqual({ header: 3, tables: 4, groups: 6, detail: 9, body: 19 });
  });
});
