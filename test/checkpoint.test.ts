/** Checkpoint files: checksummed, validated field by field, and refused in one line when damaged. */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { removeStaleTempFiles, tempPathFor } from '../node/files.ts';
import { type Checkpoint, decodeCheckpoint, encodeCheckpoint, loadCheckpoint } from '../train/checkpoint.ts';

const record = (epoch: number) => ({
  epoch,
  trainLoss: 0.5,
  trainAccuracy: 90,
  testLoss: 0.4,
  testAccuracy: 91,
  seconds: 1,
  imagesPerSecond: 100,
  lr: 0.01,
});
const sample = (w = Float32Array.of(1, -2, 3.5, 0)): Checkpoint => ({
  epoch: 2,
  trainer: { tensors: new Map([['conv1.weight', w]]), stepCount: 40, rngState: 7 },
  dataRngState: 9,
  history: [record(1), record(2)],
});

/** A checkpoint file built by hand, as the format documents it: magic, version, header, floats, SHA-256. */
function handMade(header: unknown, floats: number[], version = 2): Uint8Array {
  const json = Buffer.from(JSON.stringify(header));
  const start = Math.ceil((12 + json.length) / 4) * 4;
  const body = Buffer.alloc(start + floats.length * 4);
  body.write('MNCK', 0, 'latin1');
  body.writeUInt32LE(version, 4);
  body.writeUInt32LE(json.length, 8);
  json.copy(body, 12);
  for (const [i, v] of floats.entries()) body.writeFloatLE(v, start + 4 * i);
  if (version === 1) return body;
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

describe('checkpoint files', () => {
  it('round-trip every tensor bit for bit, with the history, and match the documented layout', () => {
    const bytes = encodeCheckpoint(sample());
    const header = { epoch: 2, stepCount: 40, rngState: 7, dataRngState: 9 };
    const tensors = [{ name: 'conv1.weight', length: 4 }];
    expect(
      Buffer.from(bytes).equals(
        Buffer.from(handMade({ ...header, tensors, history: sample().history }, [1, -2, 3.5, 0])),
      ),
    ).toBe(true);
    const back = decodeCheckpoint(bytes);
    expect(back).toEqual(sample());
  });

  it('refuse flipped bytes anywhere (header, weights, checksum) with a checksum error', () => {
    const bytes = encodeCheckpoint(sample());
    for (const at of [5, 14, bytes.length - 40, bytes.length - 33, bytes.length - 1]) {
      const damaged = Uint8Array.from(bytes);
      damaged[at] = (damaged[at] as number) ^ 0x10;
      expect(() => decodeCheckpoint(damaged, 'c.bin'), `byte ${at}`).toThrow(/^c\.bin is not a valid checkpoint: /);
    }
    const weightByte = Uint8Array.from(bytes);
    weightByte[bytes.length - 40] = (weightByte[bytes.length - 40] as number) ^ 1;
    expect(() => decodeCheckpoint(weightByte, 'c.bin')).toThrow(
      'c.bin is not a valid checkpoint: checksum mismatch (the file is damaged or was changed)',
    );
  });

  it('refuse NaN and infinite values, naming the tensor', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const bytes = encodeCheckpoint(sample(Float32Array.of(1, 2, bad, 4)));
      expect(() => decodeCheckpoint(bytes, 'c.bin')).toThrow(
        `c.bin is not a valid checkpoint: conv1.weight holds a non-finite value (${bad} at index 2): the run diverged`,
      );
    }
  });

  it('refuse headers with missing or wrong fields in one line, never "Cannot read properties"', () => {
    const good = {
      epoch: 1,
      stepCount: 3,
      rngState: 1,
      dataRngState: 2,
      tensors: [{ name: 'w', length: 1 }],
      history: [record(1)],
    };
    const cases: [unknown, RegExp][] = [
      [{ ...good, tensors: undefined }, /bad header: tensors: Invalid input: expected array, received undefined$/],
      [{ ...good, epoch: -1 }, /bad header: epoch: /],
      [{ ...good, tensors: [{ name: 'w' }] }, /bad header: tensors\.0\.length: /],
      [
        {
          ...good,
          tensors: [
            { name: 'w', length: 1 },
            { name: 'w', length: 0 },
          ],
        },
        /bad header: tensors: tensor names repeat$/,
      ],
      [{ ...good, history: [] }, /the history has 0 epochs, the header says 1$/],
      [{ ...good, history: [{ epoch: 1 }] }, /bad header: history\.0\.trainLoss: /],
      [[1, 2], /bad header: header: /],
      [null, /bad header: header: /],
    ];
    for (const [header, message] of cases) {
      let error: Error | undefined;
      try {
        decodeCheckpoint(handMade(header, [0.5]), 'c.bin');
      } catch (e) {
        error = e as Error;
      }
      expect(error?.message, JSON.stringify(header)).toMatch(message);
      expect(error?.message.split('\n')).toHaveLength(1);
    }
    expect(() => decodeCheckpoint(handMade({ ...good, tensors: [{ name: 'w', length: 2 }] }, [0.5]), 'c.bin')).toThrow(
      /expected \d+ bytes of header and tensors, found \d+/,
    );
  });

  it('still read version-1 files (no checksum, history kept in history.json)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ckpt-'));
    const header = { epoch: 1, stepCount: 3, rngState: 1, dataRngState: 2, tensors: [{ name: 'w', length: 2 }] };
    writeFileSync(join(dir, 'checkpoint.bin'), handMade(header, [0.25, -1], 1));
    const checkpoint = await loadCheckpoint(join(dir, 'checkpoint.bin'));
    expect(checkpoint.history).toBeUndefined();
    expect([...(checkpoint.trainer.tensors.get('w') ?? [])]).toEqual([0.25, -1]);
  });
});

describe('temp files of killed writes', () => {
  it('are removed when their writer is gone; live writers’ temps and other files are kept', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tmpclean-'));
    const target = join(dir, 'checkpoint.bin');
    const ours = tempPathFor(target); // this process: no write of ours is in flight while cleaning
    const dead = `${target}.999999999.0123abcd.tmp`; // no such pid
    const live = `${target}.${process.ppid}.0123abcd.tmp`; // our parent is alive
    for (const path of [ours, dead, live, join(dir, 'notes.tmp'), join(dir, 'x.123.zz.tmp'), target])
      writeFileSync(path, 'x');
    const removed = await removeStaleTempFiles(dir, ['checkpoint.bin']);
    expect(removed.sort()).toEqual([ours, dead].map((p) => p.slice(dir.length + 1)).sort());
    expect(readdirSync(dir).sort()).toEqual(
      ['checkpoint.bin', 'notes.tmp', 'x.123.zz.tmp', live.slice(dir.length + 1)].sort(),
    );
    expect(readFileSync(target, 'utf8')).toBe('x');
  });

  it.runIf(process.platform === 'linux')('count a killed writer nobody has reaped yet (a zombie) as gone', async () => {
    // `sleep 0.3` exits after the shell has exec'd into `sleep 5`, which never reaps it: a zombie, as a
    // killed sweep's trainers are until init gets to them. (With `sleep 0` the shell could reap the child
    // itself before the exec, when it exited first: the test then read a /proc entry already gone.)
    const parent = spawn('sh', ['-c', 'sleep 0.3 & echo $!; exec sleep 5'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      const [line] = (await once(parent.stdout, 'data')) as [Buffer];
      const pid = Number(line.toString().trim());
      for (let i = 0; i < 100 && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '); i++)
        await new Promise((r) => setTimeout(r, 20));
      expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toContain(') Z ');
      expect(() => process.kill(pid, 0)).not.toThrow(); // signal 0 alone would call it alive
      const dir = mkdtempSync(join(tmpdir(), 'tmpclean-'));
      const zombie = `checkpoint.bin.${pid}.0123abcd.tmp`;
      writeFileSync(join(dir, zombie), 'x');
      expect(await removeStaleTempFiles(dir, ['checkpoint.bin'])).toEqual([zombie]);
    } finally {
      parent.kill();
    }
  });
});
