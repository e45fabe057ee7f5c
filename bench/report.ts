/** What each benchmark hands the CLI: a markdown section and the same numbers as JSON. */
export interface BenchReport {
  /** Short name: the files are results-<kind>.md and results-<kind>.json. */
  kind: string;
  markdown: string;
  json: unknown;
}
