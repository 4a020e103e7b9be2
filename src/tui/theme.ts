/**
 * Colours and glyphs. Colour is never the only signal: a table past 90% also gets `!`, lost
 * events are always written out. Without a UTF-8 locale the other glyphs (arrows, rules) are
 * replaced line by line (components/Line.tsx). NO_COLOR (https://no-color.org: set and not empty) turns
 * every colour off; bold, dim and inverse stay, they are not colours.
 */
import { SPARK_ASCII, SPARK_UNICODE } from './format.js';

export interface Theme {
  /** Colour names for ink's <Text color>, or undefined under NO_COLOR. */
  warn: string | undefined;
  bad: string | undefined;
  good: string | undefined;
  accent: string | undefined;
  unicode: boolean;
  spark: readonly string[];
  /** probe live / not live */
  ok: string;
  no: string;
}

export function themeFrom(env: NodeJS.ProcessEnv): Theme {
  const color = env.NO_COLOR === undefined || env.NO_COLOR === '';
  const locale = env.LC_ALL || env.LC_CTYPE || env.LANG || '';
  // Without a UTF-8 locale the terminal may show block elements as garbage.
  const unicode = /utf-?8/i.test(locale);
  return {
    warn: color ? 'yellow' : undefined,
    bad: color ? 'red' : undefined,
    good: color ? 'green' : undefined,
    accent: color ? 'cyan' : undefined,
    unicode,
    spark: unicode ? SPARK_UNICODE : SPARK_ASCII,
    ok: unicode ? '✓' : '+',
    no: unicode ? '✗' : 'x',
  };
}
