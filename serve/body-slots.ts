/**
 * Request bodies being read at once, bounded: a body is read into memory whole (up to twice the body
 * limit before it is cut off), so a thousand uploads trickling in at a byte a second would otherwise hold
 * a thousand buffers. A request waits for a slot before its body is read (waiting, its bytes stay in the
 * socket: Node stops reading it); a slot is held only while the body arrives, never during inference, so
 * bursts of fast clients pass straight through. One address holds at most `perClient` slots, so a slow
 * uploader delays only itself; Node's request timeout ends whoever waits too long.
 */
import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';

export interface BodySlotLimits {
  total: number;
  perClient: number;
}

export const BODY_SLOT_DEFAULTS: BodySlotLimits = { total: 32, perClient: 8 };

interface Waiter {
  address: string;
  grant: () => void;
}

export class BodySlots {
  private inUse = 0;
  private readonly byClient = new Map<string, number>();
  private readonly waiting: Waiter[] = [];

  constructor(
    private readonly limits: BodySlotLimits = BODY_SLOT_DEFAULTS,
    /** Told the bodies being read and waiting after every change (for the metrics gauges). */
    private readonly onChange: (reading: number, waiting: number) => void = () => {},
  ) {}

  /** Resolves with the release function once `address` may read a body. */
  acquire(address: string): Promise<() => void> {
    return new Promise((resolve) => {
      this.waiting.push({ address, grant: () => resolve(this.releaser(address)) });
      this.grantNext();
    });
  }

  private fits(address: string): boolean {
    return this.inUse < this.limits.total && (this.byClient.get(address) ?? 0) < this.limits.perClient;
  }

  private grantNext(): void {
    for (let i = 0; i < this.waiting.length && this.inUse < this.limits.total; ) {
      const waiter = this.waiting[i] as Waiter;
      if (!this.fits(waiter.address)) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.inUse++;
      this.byClient.set(waiter.address, (this.byClient.get(waiter.address) ?? 0) + 1);
      waiter.grant();
    }
    this.onChange(this.inUse, this.waiting.length);
  }

  private releaser(address: string): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inUse--;
      const n = (this.byClient.get(address) ?? 1) - 1;
      if (n > 0) this.byClient.set(address, n);
      else this.byClient.delete(address);
      this.grantNext();
    };
  }
}

/** The remote address of a request (one bucket for requests made in-process, as tests and `app.request` do). */
export function remoteAddress(c: Context): string {
  return (c.env as Partial<HttpBindings> | undefined)?.incoming?.socket?.remoteAddress ?? 'local';
}
