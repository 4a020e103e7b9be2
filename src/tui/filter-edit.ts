/**
 * The filter line of the TUI (`/`): the text in force, the text being typed, and why a
 * half-typed one does not parse. The filter applies as it is typed; while the text does not
 * parse, the last one that did stays in force. Esc while typing brings back the one from before.
 */
import { compileFilter, FilterError } from './filter.js';
import type { Predicate } from './filter.js';

export class FilterEdit {
  /** the text in force (or being typed) */
  text = '';
  /** what matches the last text that parsed; null: everything */
  match: Predicate | null = null;
  /** why the text does not parse, or null */
  error: string | null = null;
  /** the text being typed, or null when not typing */
  editing: string | null = null;
  private before = '';

  constructor(text = '') {
    this.set(text);
  }

  set(text: string): void {
    this.text = text;
    try {
      this.match = compileFilter(text).matches;
      this.error = null;
    } catch (e) {
      if (!(e instanceof FilterError)) throw e;
      this.error = `${e.why} (column ${e.col})`;
    }
  }

  /** `/`: start typing, from the text in force. */
  begin(): void {
    this.before = this.text;
    this.editing = this.text;
  }

  /** Typed characters, or one backspace (`chars` null); false when not typing. */
  type(chars: string | null): boolean {
    if (this.editing === null) return false;
    this.editing = chars === null ? this.editing.slice(0, -1) : this.editing + chars;
    this.set(this.editing);
    return true;
  }

  /** Enter: keep the typed text. */
  commit(): void {
    this.editing = null;
  }

  /** Esc while typing: back to the text from before. */
  cancel(): void {
    this.editing = null;
    this.set(this.before);
  }
}
