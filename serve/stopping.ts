/**
 * How a stopping server lets go of its listeners, and of connections whose next request has begun to arrive.
 * Closing a listener resets the connections still waiting in the kernel's accept queue, unanswered: closed
 * at SIGTERM, 36 of 40 HTTP requests sent 50 ms before it were; closed the moment nothing was in flight, 113
 * of 120 a burst of new connections had sent just before it (outside attacks), and 23–31 of 40 gRPC
 * connections. So a listener stays open while what arrived drains (connections accepted meanwhile are
 * answered: HTTP 503 shutting_down, gRPC REFUSED_STREAM) and closes once nothing is in flight and nothing was
 * accepted for a moment.
 */

/** How long a stopping listener must accept nothing, with nothing in flight, before it closes. */
const LISTENER_QUIET_MS = 100;
/** After this long stopping, the listener closes once nothing is in flight, accepting or not: a flood of new connections does not hold it. */
const LISTENER_OPEN_MAX_MS = 1_000;

/**
 * How long a stopping server waits for a request whose headers had begun to arrive (HTTP's request line and
 * headers, gRPC's header block) before it closes its connection.
 */
export const BEGUN_REQUEST_GRACE_MS = 1_000;

export interface ListenerActivity {
  /** Connections the listener has accepted so far. */
  accepted(): number;
  /** Resolves once nothing is in flight (at once if nothing is). */
  drained(): Promise<void>;
  /** Whether something is in flight now. */
  busy(): boolean;
}

/**
 * Resolves once nothing is in flight and no connection was accepted for LISTENER_QUIET_MS and a turn of the
 * loop (its poll phase accepts what waits in the queue: a timer due after a busy turn runs before it), or
 * once nothing is in flight LISTENER_OPEN_MAX_MS after `stoppingSince` (performance.now()).
 */
export async function listenerQuiet(activity: ListenerActivity, stoppingSince: number): Promise<void> {
  for (;;) {
    await activity.drained();
    if (performance.now() - stoppingSince >= LISTENER_OPEN_MAX_MS) return;
    const accepted = activity.accepted();
    await new Promise((resolve) => setTimeout(resolve, LISTENER_QUIET_MS));
    await new Promise((resolve) => setImmediate(resolve));
    if (activity.accepted() === accepted && !activity.busy()) return;
  }
}

/**
 * `listener`'s close(), done once however often it is asked for (when quiet, and again at the cut), with
 * `beforeClose` run first; `closed` resolves when the listener has closed.
 */
export function closesOnce(
  listener: { close(callback: () => void): unknown },
  beforeClose: () => void = () => {},
): { close: () => void; closed: Promise<void> } {
  let resolveClosed = () => {};
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });
  let asked = false;
  const close = () => {
    if (asked) return;
    asked = true;
    beforeClose();
    listener.close(() => resolveClosed());
  };
  return { close, closed };
}
