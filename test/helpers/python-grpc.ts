/**
 * The Python gRPC clients the serving tests run against our server: grpcio is another project's client, so
 * what it accepts is an independent check of the wire.
 */
import { execFile, spawnSync } from 'node:child_process';

/** The first Python with grpcio and grpc_tools (Debian's python3-grpcio lives in the system Python); undefined: none. */
export const grpcPython: string | undefined = ['python3', '/usr/bin/python3'].find(
  (p) => spawnSync(p, ['-c', 'import grpc, grpc_tools']).status === 0,
);

export interface PythonClientOptions {
  /** Written to the client's stdin, which is then closed. */
  stdin?: string;
  /** Each chunk of stdout as it arrives (to act while the client runs). */
  onOutput?: (chunk: string) => void;
}

/** Runs `grpcPython` with `args` (a script and its arguments) to its end, within 60 s; its stdout, or its stderr in the error. */
export function runPythonClient(args: string[], { stdin, onOutput }: PythonClientOptions = {}): Promise<string> {
  const python = grpcPython;
  if (python === undefined) return Promise.reject(new Error('no Python with grpcio and grpc_tools'));
  return new Promise<string>((resolve, reject) => {
    const child = execFile(python, args, { encoding: 'utf8', timeout: 60_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout),
    );
    if (onOutput) child.stdout?.on('data', onOutput);
    child.stdin?.end(stdin);
  });
}
