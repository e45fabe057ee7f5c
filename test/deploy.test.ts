/**
 * The container and cluster manifests against the server they deploy. No container engine runs here, so:
 * every manifest parses (the `yaml` library); every probe path answers on the real server (startServer on an
 * ephemeral port, real repository); ports agree with the server CLI's default, the Dockerfile's EXPOSE/CMD
 * and each other; and the Dockerfile's own CMD and HEALTHCHECK run against the server bundled as its build
 * stage bundles it, laid out as in the image (/app/dist, /app/web-demo/dist, /app/node_modules).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { type RunningServer, startServer } from '../serve/server.ts';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

// biome-ignore lint/suspicious/noExplicitAny: manifests are untyped YAML; the assertions are the types.
type Manifest = any;

function manifests(dir: string): { file: string; doc: Manifest }[] {
  return readdirSync(join(ROOT, dir))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) =>
      parseAllDocuments(readFileSync(join(ROOT, dir, f), 'utf8')).map((d) => {
        expect(d.errors, `${dir}/${f}`).toEqual([]);
        return { file: `${dir}/${f}`, doc: d.toJS() };
      }),
    );
}

const k8s = manifests('deploy/k8s');
const kserve = manifests('deploy/kserve');
const kind = (docs: { doc: Manifest }[], k: string) => docs.filter((d) => d.doc.kind === k).map((d) => d.doc);
const [deployment] = kind(k8s, 'Deployment');
const [service] = kind(k8s, 'Service');
const [hpa] = kind(k8s, 'HorizontalPodAutoscaler');
const [pvc] = kind(k8s, 'PersistentVolumeClaim');
const services = kind(kserve, 'InferenceService');
const custom = services.find((s) => s.spec.predictor.containers);
const triton = services.find((s) => s.spec.predictor.model);

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
/** The final stage's instructions (after the last FROM), continuation lines joined. */
const finalStage = (dockerfile.split(/^FROM /m).at(-1) as string).replace(/\\\n\s*/g, ' ');
const instruction = (name: string) => new RegExp(`^${name} (.*)$`, 'm').exec(finalStage)?.[1] ?? '';
const cmd: string[] = JSON.parse(instruction('CMD'));
const healthcheck: string[] = JSON.parse(/CMD (\[.*\])$/.exec(instruction('HEALTHCHECK'))?.[1] ?? '[]');
const argAfter = (args: string[], flag: string) => args[args.indexOf(flag) + 1];

/** Every container of the pod templates, with what its probes ask for. */
const containers: { where: string; container: Manifest }[] = [
  ...deployment.spec.template.spec.containers.map((c: Manifest) => ({ where: 'deploy/k8s Deployment', container: c })),
  ...custom.spec.predictor.containers.map((c: Manifest) => ({ where: 'deploy/kserve custom', container: c })),
];

/** A model repository with one ready model (the torch-exported tutorial CNN from the fixtures). */
function repository(): string {
  const root = tmp('deploy-models-');
  mkdirSync(join(root, 'torchcnn', '1'), { recursive: true });
  copyFileSync(join(ROOT, 'test/fixtures/torch-cnn-opset13.onnx'), join(root, 'torchcnn', '1', 'model.onnx'));
  return root;
}

describe('manifests and the server they deploy', () => {
  let server: RunningServer;
  let empty: RunningServer;
  beforeAll(async () => {
    server = await startServer({ models: repository(), port: 0 });
    empty = await startServer({ models: tmp('deploy-empty-'), port: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await empty?.close();
  });

  it('every probe path is a route the server answers: 200 when a model is loaded', async () => {
    const paths = containers.flatMap(({ container }) =>
      ['readinessProbe', 'livenessProbe'].map((probe) => container[probe]?.httpGet?.path),
    );
    expect(new Set(paths)).toEqual(new Set(['/v2/health/ready', '/v2/health/live']));
    for (const path of paths) expect((await fetch(`${server.url}${path}`)).status, path).toBe(200);
    // Readiness means "has a model to serve"; liveness only "the process answers".
    expect((await fetch(`${empty.url}/v2/health/ready`)).status).toBe(400);
    expect((await fetch(`${empty.url}/v2/health/live`)).status).toBe(200);
  });

  it('ports agree: the CLI default, EXPOSE, CMD, HEALTHCHECK, containerPort, the probes and the Service', async () => {
    const help = (await run(process.execPath, ['--import', 'tsx', join(ROOT, 'serve/cli.ts'), '--help'])).stdout;
    const defaultPort = Number(/--port <n>.*\(default: (\d+)\)/.exec(help)?.[1]);
    expect(defaultPort).toBeGreaterThan(0);
    expect(Number(instruction('EXPOSE'))).toBe(defaultPort);
    expect(Number(argAfter(cmd, '--port'))).toBe(defaultPort);
    expect(healthcheck.join(' ')).toContain(`http://127.0.0.1:${defaultPort}/v2/health/live`);
    for (const { where, container } of containers) {
      const [port] = container.ports;
      expect(port.containerPort, where).toBe(defaultPort);
      expect(Number(argAfter(container.args, '--port')), where).toBe(port.containerPort);
      expect(argAfter(container.args, '--host'), where).toBe('0.0.0.0');
      for (const probe of [container.readinessProbe, container.livenessProbe])
        expect([port.name, port.containerPort], where).toContain(probe.httpGet.port);
    }
    const podPorts = deployment.spec.template.spec.containers[0].ports;
    expect(podPorts.map((p: Manifest) => p.name)).toContain(service.spec.ports[0].targetPort);
  });

  it('the pieces fit: selectors, the autoscaled Deployment, the models volume, the drain, KServe on one repository', () => {
    const pod = deployment.spec.template;
    expect(pod.metadata.labels).toMatchObject(deployment.spec.selector.matchLabels);
    expect(pod.metadata.labels).toMatchObject(service.spec.selector);
    expect(hpa.spec.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: deployment.metadata.name,
    });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    const container = pod.spec.containers[0];
    expect(container.resources.requests.cpu).toBeDefined(); // the HPA's utilization is relative to it
    const mount = container.volumeMounts.find((m: Manifest) => m.mountPath === argAfter(container.args, '--models'));
    const volume = pod.spec.volumes.find((v: Manifest) => v.name === mount.name);
    expect(volume.persistentVolumeClaim.claimName).toBe(pvc.metadata.name);
    expect(mount.readOnly).toBe(true);
    // SIGTERM comes after preStop; the grace period must leave the drain time after it.
    const preStop = Number(container.lifecycle.preStop.exec.command.at(-1));
    expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStop + 10);
    expect(pod.spec.securityContext.runAsNonRoot).toBe(true);
    // KServe: our image reads what the storage initializer mounts; Triton reads the same repository.
    const kserveContainer = custom.spec.predictor.containers[0];
    expect(argAfter(kserveContainer.args, '--models')).toBe('/mnt/models');
    const storage = kserveContainer.env.find((e: Manifest) => e.name === 'STORAGE_URI').value;
    expect(storage).toBe(`pvc://${pvc.metadata.name}/`);
    expect(kserveContainer.image).toBe(container.image);
    expect(triton.spec.predictor.model).toMatchObject({
      modelFormat: { name: 'onnx' },
      runtime: 'kserve-tritonserver',
      protocolVersion: 'v2',
      storageUri: storage,
    });
  });
});

describe('the image: its build stage bundle, CMD and HEALTHCHECK', () => {
  it('bundles the server, serves models, the demo and health as CMD says, passes HEALTHCHECK, drains on SIGTERM', async () => {
    expect(finalStage).toMatch(/^RUN npm ci --omit=dev/m);
    expect(instruction('USER')).toBe('node');
    const bundle = /node (deploy\/bundle-server\.mjs) (\S+)/.exec(dockerfile);
    expect(bundle?.[2]).toBe(cmd[1]);
    // The image's /app: the bundle, the built demo, and node_modules.
    const app = tmp('deploy-app-');
    await run(process.execPath, [join(ROOT, bundle?.[1] as string), join(app, cmd[1] as string)], { cwd: ROOT });
    mkdirSync(join(app, 'web-demo', 'dist'), { recursive: true });
    writeFileSync(join(app, 'web-demo', 'dist', 'index.html'), '<!doctype html><title>demo</title>');
    mkdirSync(join(app, 'web-demo', 'dist', 'train'), { recursive: true }); // the build stage builds both pages
    writeFileSync(join(app, 'web-demo', 'dist', 'train', 'index.html'), '<!doctype html><title>train</title>');
    symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'));
    // The final stage installs `dependencies` only: every package the bundle imports must be one.
    const { dependencies } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    const source = readFileSync(join(app, cmd[1] as string), 'utf8');
    // `from "x"`, `import "x"`, `import("x")` — not a call such as Buffer.from("…").
    const imported = [...source.matchAll(/(?<![.\w$])(?:from|import)\s*\(?\s*"([^"]+)"/g)].map((m) => m[1] as string);
    const packages = new Set(imported.filter((s) => !s.startsWith('node:') && !builtinModules.includes(s)));
    expect(packages.size).toBeGreaterThan(0);
    for (const specifier of packages) {
      const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
      expect(Object.keys(dependencies), `the server imports ${specifier}`).toContain(name);
    }

    const args = cmd.slice(1).map((a, i, all) => (all[i - 1] === '--models' ? repository() : a));
    args[args.indexOf('--port') + 1] = '0';
    const child: ChildProcess = spawn(cmd[0] as string, args, { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (d) => {
      output += d;
    });
    child.stderr?.on('data', (d) => {
      output += d;
    });
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    try {
      const deadline = Date.now() + 60_000;
      let port: string | undefined;
      while (!port && Date.now() < deadline) {
        port = /serving on http:\/\/[^:]+:(\d+)/.exec(output)?.[1];
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(port, output).toBeDefined();
      const url = `http://127.0.0.1:${port}`;
      expect((await fetch(`${url}/v2/health/ready`)).status).toBe(200);
      expect(await (await fetch(`${url}/`)).text()).toContain('<title>demo</title>');
      // Docker runs HEALTHCHECK's exec form in the container: here, the same command against this port.
      const [node, ...check] = healthcheck.map((a) => a.replace(':8080/', `:${port}/`));
      await expect(run(node as string, check)).resolves.toBeDefined();
      const closed = healthcheck.map((a) => a.replace(':8080/', ':1/'));
      await expect(run(closed[0] as string, closed.slice(1))).rejects.toMatchObject({ code: 1 });
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 120_000);
});
