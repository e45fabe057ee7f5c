/**
 * `npm run serve` as its own process, as users run it, for tests and benchmarks that need the server's
 * process apart from theirs (its RSS, killing it): started on a free port, resolved with its URL.
 */
import { type ChildProcess, spawn } from 'node:child_process';

export async function startServeProcess(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'serve/cli.ts', '--port', '0', '--quiet', ...args], {
    stdio: ['ignore', 'pipe', 'ignore'],
    env,
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /serving on (http:\/\/\S+)/.exec(out);
      if (m?.[1]) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}): ${out.slice(-300)}`)));
  });
  return { url, child };
}
