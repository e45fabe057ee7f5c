/**
 * One loaded model version: its ORT session behind a batcher, its checked signature, and the exact bytes
 * it was loaded from (the browser downloads those, never whatever is on disk now). Requests hold a lease
 * while they use it; a replaced or removed version is released only when its last lease ends, so a hot
 * reload never fails a request in flight.
 */
import { createHash } from 'node:crypto';
import * as ort from 'onnxruntime-node';
import { decodeModel } from '../export/onnx/codec.ts';
import { describeModel } from '../export/onnx/describe.ts';
import { IMAGE_PIXELS, IMAGE_SHAPE, normalizationFolded } from '../runtime/contract.ts';
import { createSession, type Device, type Provider } from '../runtime/execution.ts';
import { Batcher, type Outputs } from './batcher.ts';
import { ContractError, checkRows, checkSignature, type ModelSignature } from './model-contract.ts';

export interface LoadSettings {
  device: Device;
  threads: number;
  maxBatch: number;
  batchDelayMs: number;
  onBatch?: (size: number) => void;
  onNotice?: (message: string) => void;
}

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

export class ServedVersion {
  private leases = 0;
  private retired = false;
  private released: Promise<void> | undefined;

  private constructor(
    readonly name: string,
    readonly version: number,
    readonly bytes: Uint8Array,
    readonly hash: string,
    readonly provider: Provider,
    readonly metadata: Record<string, string>,
    readonly signature: ModelSignature,
    /** Elements per image of each output. */
    readonly rowSizes: Record<string, number>,
    readonly batcher: Batcher,
    private readonly session: ort.InferenceSession,
  ) {}

  /** Models made elsewhere expect the tutorial's normalized input unless their metadata says otherwise. */
  get normalizesInput(): boolean {
    return !normalizationFolded(this.metadata);
  }

  /** Load, check the contract with real runs, and warm up. Throws with a reason a user can act on. */
  static async load(name: string, version: number, bytes: Uint8Array, settings: LoadSettings): Promise<ServedVersion> {
    let info: ReturnType<typeof describeModel>;
    try {
      info = describeModel(decodeModel(bytes));
    } catch (error) {
      throw new ContractError(`not an ONNX model (${(error as Error).message.split('\n')[0]?.slice(0, 120)})`);
    }
    const signature = checkSignature(info);
    const { session, provider } = await createSession(bytes, {
      device: settings.device,
      threads: settings.threads,
      onNotice: settings.onNotice,
    });
    try {
      const runRows = async (images: Float32Array, count: number): Promise<Outputs> => {
        const feed = (data: Float32Array, n: number) => ({
          [signature.input.name]: new ort.Tensor('float32', data, [n, ...IMAGE_SHAPE]),
        });
        const collect = (out: ort.InferenceSession.OnnxValueMapType) =>
          Object.fromEntries(signature.outputs.map((o) => [o.name, (out[o.name] as ort.Tensor).data as Float32Array]));
        if (!signature.staticBatchOne) return collect(await session.run(feed(images, count)));
        // A static batch of 1: one run per image, rows concatenated.
        const parts: Outputs[] = [];
        for (let i = 0; i < count; i++)
          parts.push(collect(await session.run(feed(images.slice(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS), 1))));
        return Object.fromEntries(
          signature.outputs.map((o) => {
            const rows = parts.map((p) => p[o.name] as Float32Array);
            const all = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
            let offset = 0;
            for (const row of rows) {
              all.set(row, offset);
              offset += row.length;
            }
            return [o.name, all];
          }),
        );
      };
      const rowSizes = await checkBatchBehaviour(signature, runRows);
      const batcher = new Batcher(runRows, {
        maxBatch: settings.maxBatch,
        delayMs: settings.batchDelayMs,
        rowSizes,
        imageSize: IMAGE_PIXELS,
        onBatch: settings.onBatch,
      });
      return new ServedVersion(
        name,
        version,
        bytes,
        sha256(bytes),
        provider,
        info.metadata,
        signature,
        rowSizes,
        batcher,
        session,
      );
    } catch (error) {
      await session.release();
      throw error;
    }
  }

  /** Hold the version while a request uses it; call the returned function when done. */
  acquire(): () => void {
    this.leases++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.leases--;
      if (this.retired && this.leases === 0) void this.releaseSession();
    };
  }

  /** No new leases will come (replaced or removed): release the session once the last one ends. */
  retire(): Promise<void> {
    this.retired = true;
    return this.leases === 0 ? this.releaseSession() : Promise.resolve();
  }

  private releaseSession(): Promise<void> {
    this.released ??= this.session.release().catch(() => {});
    return this.released;
  }
}

/**
 * Real runs on two different images, together and alone: every output must give one row per image
 * and each row must not depend on the other images in the batch. Doubles as the warm-up run.
 */
async function checkBatchBehaviour(
  signature: ModelSignature,
  run: (images: Float32Array, count: number) => Promise<Outputs>,
): Promise<Record<string, number>> {
  const pair = new Float32Array(2 * IMAGE_PIXELS);
  for (let i = 0; i < IMAGE_PIXELS; i++) pair[IMAGE_PIXELS + i] = ((i * 7919) % 255) / 255; // image 2: a pattern
  const together = await run(pair, 2);
  const rowSizes = checkRows(signature, together, 2);
  const alone = await run(pair.slice(IMAGE_PIXELS), 1);
  for (const [name, size] of Object.entries(rowSizes)) {
    const a = alone[name] as Float32Array;
    const b = (together[name] as Float32Array).subarray(size);
    for (let k = 0; k < size; k++) {
      const diff = Math.abs((a[k] as number) - (b[k] as number));
      if (!(diff <= 1e-4 * Math.max(1, Math.abs(a[k] as number))))
        throw new ContractError(`output ${name} of one image changes with the other images in its batch`);
    }
  }
  return rowSizes;
}
