//! Redis-style channel patterns for the debug log filter (`ws:*`,
//! `ws:user:*:notifications`, `ws:?rders`, `ws:[io]*`).
//!
//! Same rules as Redis `PSUBSCRIBE`: `*` any run of characters (including
//! none, and including `:`), `?` one character, `[abc]` / `[a-z]` / `[^a]` a
//! class, `\x` a literal x. Matching is a small backtracking matcher, not a
//! RegExp built from user text, so no pattern can be slow or throw.

/** Whether `text` matches `pattern`. An empty pattern matches everything. */
export function globMatch(pattern: string, text: string): boolean {
  if (pattern === '') return true;
  let p = 0;
  let t = 0;
  // Where to resume after the last `*`: pattern index after it, and the text
  // index it currently swallows up to.
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    if (p < pattern.length) {
      const c = pattern[p];
      if (c === '*') {
        starP = ++p;
        starT = t;
        continue;
      }
      if (c === '?') {
        p++;
        t++;
        continue;
      }
      if (c === '[') {
        const cls = matchClass(pattern, p, text[t] as string);
        if (cls.matched) {
          p = cls.end;
          t++;
          continue;
        }
      } else {
        let literal = c as string;
        let width = 1;
        if (c === '\\' && p + 1 < pattern.length) {
          literal = pattern[p + 1] as string;
          width = 2;
        }
        if (literal === text[t]) {
          p += width;
          t++;
          continue;
        }
      }
    }
    if (starP >= 0) {
      p = starP;
      t = ++starT;
      continue;
    }
    return false;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/** Matches `[...]` at `start` against one character. */
function matchClass(pattern: string, start: number, ch: string): { matched: boolean; end: number } {
  let i = start + 1;
  let negate = false;
  if (pattern[i] === '^') {
    negate = true;
    i++;
  }
  let matched = false;
  let first = true;
  while (i < pattern.length && (first || pattern[i] !== ']')) {
    first = false;
    let lo = pattern[i] as string;
    if (lo === '\\' && i + 1 < pattern.length) {
      i++;
      lo = pattern[i] as string;
    }
    if (pattern[i + 1] === '-' && i + 2 < pattern.length && pattern[i + 2] !== ']') {
      let hi = pattern[i + 2] as string;
      let skip = 3;
      if (hi === '\\' && i + 3 < pattern.length) {
        hi = pattern[i + 3] as string;
        skip = 4;
      }
      const [a, b] = lo <= hi ? [lo, hi] : [hi, lo];
      if (ch >= a && ch <= b) matched = true;
      i += skip;
    } else {
      if (ch === lo) matched = true;
      i++;
    }
  }
  if (i >= pattern.length) {
    // No closing bracket: Redis treats the rest as the class; so do we.
    return { matched: negate ? !matched : matched, end: i };
  }
  return { matched: negate ? !matched : matched, end: i + 1 };
}
