/** Zod's issues as one line, each naming its field: `batchSize: Too big: expected number to be <=4096`. */
import type { z } from 'zod';

export const issuesInOneLine = (error: z.ZodError, whole = 'value') =>
  error.issues.map((issue) => `${issue.path.join('.') || whole}: ${issue.message}`).join('; ');
