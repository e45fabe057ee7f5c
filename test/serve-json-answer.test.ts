/**
 * v2 JSON answers written at most 16,384 values per event-loop turn, all answers together
 * (serve/json-answer.ts): the text is exactly what one `JSON.stringify` of the whole answer gives, and other
 * work runs between the slices (one stringify of 1,024 × 4,096 values held the loop 860–878 ms; 1,000
 * one-image answers of one batch, 1.1 s).
 */
import { describe, expect, it } from 'vitest';
import { DroppedRequestError } from '../serve/batcher.ts';
import { JSON_VALUES_PER_SLICE, JSON_VALUES_PER_TURN, jsonAnswerBytes } from '../serve/json-answer.ts';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe('JSON answers', () => {
  it('are the text JSON.stringify writes, for every kind of float and any number of slices', async () => {
    const special = [0, -0, 1, -1, 1e-45, -3.4028234663852886e38, 0.1, 1 / 3, 123456.789, 2 ** -126];
    const long = Float32Array.from({ length: 2 * JSON_VALUES_PER_TURN + 7 }, (_, i) => Math.sin(i) * 10 ** (i % 9));
    const top = { model_name: 'm', model_version: '3', id: 'é "quoted" \\ \u2028' };
    const tensors = [
      { meta: { name: 'logits', datatype: 'FP32', shape: [1, 10] }, data: Float32Array.from(special) },
      { meta: { name: 'raw', datatype: 'FP32', shape: [1, 4], parameters: { binary_data_size: 16 } } },
      { meta: { name: 'wide', datatype: 'FP32', shape: [1, long.length] }, data: long },
      { meta: { name: 'empty', datatype: 'FP32', shape: [0, 10] }, data: new Float32Array(0) },
    ];
    const expected = JSON.stringify({
      ...top,
      outputs: tensors.map(({ meta, data }) => (data ? { ...meta, data: Array.from(data) } : meta)),
    });
    expect(text(await jsonAnswerBytes(top, tensors))).toBe(expected);
    expect(text(await jsonAnswerBytes({ model_name: 'm' }, []))).toBe('{"model_name":"m","outputs":[]}');
  });

  /** Event-loop turns taken while `work` runs. */
  async function turnsDuring(work: () => Promise<unknown>): Promise<number> {
    let turns = 0;
    let ticking = true;
    const tick = () => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    await work();
    ticking = false;
    return turns;
  }

  it('let the event loop turn between slices of one answer and of many', async () => {
    const slices = 8;
    const data = new Float32Array(slices * JSON_VALUES_PER_TURN).fill(0.5);
    let parsed: number[] = [];
    const one = await turnsDuring(async () => {
      parsed = JSON.parse(text(await jsonAnswerBytes({}, [{ meta: { name: 'x' }, data }]))).outputs[0].data;
    });
    expect(parsed).toHaveLength(data.length);
    // Built in one go, the ticker would not have run at all before the answer was done.
    expect(one).toBeGreaterThanOrEqual(slices - 1);
    // 100 answers of 4,096 values each, built at once (one batch's answers): 409,600 values, 16,384 a turn.
    const small = new Float32Array(4096).fill(0.25);
    const many = await turnsDuring(() =>
      Promise.all(Array.from({ length: 100 }, () => jsonAnswerBytes({}, [{ meta: {}, data: small }]))),
    );
    expect(many).toBeGreaterThanOrEqual(24);
  });

  it('finish a big answer in a bounded number of turns however many small ones come after it, and keep small ones moving', async () => {
    // An outside attack: shared only in turn, one 1,024-image answer took 115 s behind 128 connections of small ones.
    const bigSlices = 16;
    const big = new Float32Array(bigSlices * JSON_VALUES_PER_SLICE).fill(0.75);
    const small = new Float32Array(JSON_VALUES_PER_SLICE).fill(0.25);
    let smallDone = 0;
    let smallsAtBigDone = 0;
    const turns = await turnsDuring(async () => {
      const bigAnswer = jsonAnswerBytes({}, [{ meta: {}, data: big }]).then(() => {
        smallsAtBigDone = smallDone;
      });
      // 400 small answers start after it, and keep starting while it is built.
      const smalls = Array.from({ length: 400 }, () =>
        jsonAnswerBytes({}, [{ meta: {}, data: small }]).then(() => smallDone++),
      );
      await Promise.all([bigAnswer, ...smalls]);
    });
    // Half of every turn: done within about twice its slices (a few turns' slack), not after the 400.
    expect(smallsAtBigDone).toBeLessThan(2 * bigSlices + 4);
    // And the small ones were not held back while it was built: one a turn beside it.
    expect(smallsAtBigDone).toBeGreaterThanOrEqual(bigSlices - 2);
    expect(turns).toBeGreaterThanOrEqual(
      (bigSlices * JSON_VALUES_PER_SLICE + 400 * small.length) / JSON_VALUES_PER_TURN - 1,
    );
  });

  it("share turns between clients, not connections: one client's many answers do not hold up another's", async () => {
    // An outside attack: shared per answer, a one-image answer waited 1.6 s behind 4 addresses × 64 connections.
    const slice = new Float32Array(JSON_VALUES_PER_SLICE).fill(0.5);
    let floodDone = 0;
    let floodAtProbe = -1;
    const flood = Array.from({ length: 300 }, () =>
      jsonAnswerBytes({}, [{ meta: {}, data: slice }], { client: '10.0.0.1' }).then(() => floodDone++),
    );
    const probe = jsonAnswerBytes({}, [{ meta: {}, data: slice }], { client: '10.0.0.2' }).then(() => {
      floodAtProbe = floodDone;
    });
    await Promise.all([...flood, probe]);
    // The oldest slot takes the flood's first answer each turn; the other half goes to the probe at once.
    expect(floodAtProbe).toBeGreaterThanOrEqual(0);
    expect(floodAtProbe).toBeLessThan(4);
  });

  it('stop at the next slice once the client has gone', async () => {
    const gone = new AbortController();
    gone.abort();
    const data = new Float32Array(4 * JSON_VALUES_PER_TURN);
    await expect(jsonAnswerBytes({}, [{ meta: {}, data }], { signal: gone.signal })).rejects.toThrow(
      DroppedRequestError,
    );
    const leaving = new AbortController();
    const build = jsonAnswerBytes({}, [{ meta: {}, data }], { signal: leaving.signal });
    setImmediate(() => leaving.abort());
    await expect(build).rejects.toThrow('the client went away');
  });
});
