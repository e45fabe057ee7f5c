/** Resolves once `done` holds, polling every `pollMs` (the test's own timeout bounds the wait). */
export async function until(done: () => boolean | Promise<boolean>, pollMs = 10): Promise<void> {
  while (!(await done())) await new Promise((resolve) => setTimeout(resolve, pollMs));
}
