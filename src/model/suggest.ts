/** Edit distance (insertions, deletions, substitutions) between two short words. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length]!;
}

/**
 * The candidate a mistyped word most likely meant: the same word in another case, or the nearest
 * within a third of its length (one edit for short words); undefined when nothing is that close.
 */
export function nearestWord(word: string, candidates: Iterable<string>): string | undefined {
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    if (candidate.toLowerCase() === lower) return candidate;
    const d = editDistance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** The problem text for a key a document should not have: the near key it probably meant, or the known ones. */
export function unknownKeyProblem(key: string, known: Iterable<string>): string {
  const near = nearestWord(key, known);
  return near ? `unknown key; did you mean ${near}?` : `unknown key (known: ${[...known].join(', ')})`;
}
