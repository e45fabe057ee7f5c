/** The page's side of gradients-worker.ts: one worker shared by the why and attack panels, requests by id. */
import { type ModelEntry, modelBytesToTransfer } from '../models.ts';
import type { AttackRequest, ExplainRequest, FromGradients, ModelRef } from './gradients-protocol.ts';

type Body<T> = Omit<T, 'id' | 'model' | 'type'>;

export const modelKey = (model: ModelEntry) => `${model.name}/${model.version}`;

export class GradientsClient {
  private readonly worker = new Worker(new URL('./gradients-worker.ts', import.meta.url), {
    type: 'module',
    name: 'gradients',
  });
  /** Models whose bytes the worker has been sent (it keeps their sessions). */
  private readonly sent = new Set<string>();
  private readonly waiting = new Map<number, (m: FromGradients) => void>();
  private next = 0;

  constructor() {
    this.worker.onmessage = (event: MessageEvent<FromGradients>) => {
      const m = event.data;
      if (m.type === 'error') this.sent.delete(m.key); // its session failed: send the bytes again next time
      this.waiting.get(m.id)?.(m);
      this.waiting.delete(m.id);
    };
  }

  private async ref(model: ModelEntry): Promise<{ ref: ModelRef; transfer: Transferable[] }> {
    const key = modelKey(model);
    if (this.sent.has(key)) return { ref: { key }, transfer: [] };
    this.sent.add(key);
    try {
      const bytes = await modelBytesToTransfer(model);
      return { ref: { key, bytes }, transfer: [bytes.buffer] };
    } catch (error) {
      this.sent.delete(key); // never reached the worker
      throw error;
    }
  }

  private async send(model: ModelEntry, message: Body<ExplainRequest | AttackRequest> & { type: string }) {
    const id = ++this.next;
    const { ref, transfer } = await this.ref(model);
    const reply = new Promise<FromGradients>((resolve) => this.waiting.set(id, resolve));
    this.worker.postMessage({ ...message, id, model: ref }, transfer);
    const m = await reply;
    if (m.type === 'error') throw new Error(m.message);
    return m;
  }

  async explain(model: ModelEntry, body: Body<ExplainRequest>) {
    const m = await this.send(model, { type: 'explain', ...body });
    if (m.type !== 'explained') throw new Error(`internal: '${m.type}' in reply to explain`);
    return m;
  }

  async attack(model: ModelEntry, body: Body<AttackRequest>) {
    const m = await this.send(model, { type: 'attack', ...body });
    if (m.type !== 'attacked') throw new Error(`internal: '${m.type}' in reply to attack`);
    return m;
  }
}
