/**
 * Triton's ModelStreamInfer: a stream of ModelInferRequests, each answered in order by a
 * ModelStreamInferResponse — the ModelInferResponse, or `error_message` with only the request's id, after
 * which the stream goes on (as Triton's non-decoupled models answer; tritonclient's `start_stream` and
 * `async_stream_infer` read it so). One request at a time: the next message is read only once this one's
 * answer has left for the client, so a client that stops reading holds one answer and one request, and
 * HTTP/2's flow control holds the rest in the client. The interceptor (server.ts) runs it, below grpc-js's
 * stream object, which reads up to 16 messages ahead of its handler.
 */
import type * as grpc from '@grpc/grpc-js';
import { MAX_REQUEST_EXTRAS } from '../v2-infer.ts';

/** What the stream needs of its call: grpc-js's intercepting call, whose hooks count bytes as ModelInfer's. */
export interface StreamingCall {
  sendMessage(message: unknown, flushed: () => void): void;
  sendStatus(status: { code: grpc.status; details: string }): void;
  startRead(): void;
  /** The client has ended its side (HTTP/2's half-close seen), whether or not grpc-js has read up to it. */
  clientEnded?(): boolean;
}

/** A request as the decoder gives it: refused (with its status) or whole, and its id. */
export interface StreamRequest {
  id?: string;
}

/** How one request is answered: its ModelInferResponse, or the status it failed with. */
export type Answer = { response: unknown } | { error: Partial<grpc.StatusObject> };

export interface InferStream {
  /** The next request (read after the one before was answered). */
  message(request: StreamRequest): void;
  /**
   * The client sent its last request: end once it is answered — INVALID_ARGUMENT if its stream ended inside
   * a message (`cut`; it ended OK, the part dropped without a word).
   */
  halfClose(cut?: boolean): void;
  /** The call was cut: drop what is under way. */
  cancel(): void;
  /**
   * The server is stopping: a stream whose client has ended its side is answered to its end; any other ends
   * once the request under way is answered — OK if the client's next event is its half-close, else
   * UNAVAILABLE: no more requests are answered.
   */
  stop(): void;
}

const STOPPING = { code: 14 as grpc.status.UNAVAILABLE, details: 'the server is stopping' };
const CUT = { code: 3 as grpc.status.INVALID_ARGUMENT, details: 'the stream ended inside a request message' };

/** A failed request's id, echoed so its client knows which failed — not one refused for its length. */
const echoedId = (id: string | undefined) => (id && id.length <= MAX_REQUEST_EXTRAS ? id : '');

/**
 * Runs one stream: `answer` each request in turn; `sent` once an answer has left (its bytes no longer held).
 * Reading starts at once.
 */
export function inferStream(
  call: StreamingCall,
  answer: (request: StreamRequest, cancelled: AbortSignal) => Promise<Answer>,
  sent: () => void,
): InferStream {
  const cancel = new AbortController();
  let busy = false;
  let halfClosed = false;
  let cutShort = false;
  let stopping = false;
  let ended = false;
  const end = (status: { code: grpc.status; details: string } = { code: 0 as grpc.status.OK, details: '' }) => {
    if (ended || cancel.signal.aborted) return;
    ended = true;
    call.sendStatus(status);
  };
  // Stopping with nothing under way: a client that has ended its side gets OK once grpc-js reads up to its
  // half-close (delivered only on a read: it got UNAVAILABLE before, its every request answered); one
  // that has not, or whose next event is a request, gets UNAVAILABLE.
  const endStopping = () => {
    if (call.clientEnded?.()) call.startRead();
    else end(STOPPING);
  };
  const stream: InferStream = {
    message(request) {
      if (ended || cancel.signal.aborted) return;
      if (stopping) return end(STOPPING);
      busy = true;
      // Only the id outlives the answer's making: the write callback below lives until the answer has left,
      // which a client that never reads never lets happen, and a request it kept in scope held its 1 MB
      // (2,048 such streams: +1.4 GB, after the budget for decoded requests had counted them returned).
      const id = request.id;
      answer(request, cancel.signal)
        .catch((): Answer => ({ error: { details: 'internal server error' } }))
        .then((outcome) => {
          if (cancel.signal.aborted) return;
          const message =
            'response' in outcome
              ? { infer_response: outcome.response } // no error_message on the wire, as Triton's answers
              : { error_message: outcome.error.details ?? '', infer_response: { id: echoedId(id) } };
          call.sendMessage(message, () => {
            busy = false;
            sent();
            if (halfClosed) end(cutShort ? CUT : undefined);
            else if (stopping) endStopping();
            else if (!cancel.signal.aborted) call.startRead();
          });
        })
        // Should grpc-js throw sending it: INTERNAL, never an unhandled rejection (which ends the process).
        .catch(() => {
          try {
            end({ code: 13 as grpc.status.INTERNAL, details: 'internal server error' });
          } catch {
            // The call is past answering (its stream gone): nothing is left to tell.
          }
        });
    },
    halfClose(cut = false) {
      halfClosed = true;
      cutShort = cut;
      if (!busy) end(cut ? CUT : undefined);
    },
    cancel() {
      cancel.abort();
    },
    stop() {
      // A client that has ended its side sent all of it before: every request is answered (within the exit
      // timeout), then OK. (It got the one under way, then UNAVAILABLE: 1 of 12 answered, a re-attack.)
      if (stopping || call.clientEnded?.()) return;
      stopping = true;
      if (!busy) endStopping();
    },
  };
  call.startRead();
  return stream;
}
