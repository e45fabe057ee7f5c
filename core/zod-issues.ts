/**
 * A zod validation failure as one line, each issue at its field: `inputs.0.shape: Too small…`. Request
 * bodies name their first issue only (a hostile body can have thousands); files of ours name them all.
 */
export interface ZodIssues {
  issues: { path: PropertyKey[]; message: string }[];
}

export function issuesInOneLine(error: ZodIssues, whole = 'value', most = Number.POSITIVE_INFINITY): string {
  const shown = error.issues.slice(0, most);
  if (shown.length === 0) return `${whole}: invalid`;
  return shown.map((issue) => `${issue.path.map(String).join('.') || whole}: ${issue.message}`).join('; ');
}
