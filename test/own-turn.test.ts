/**
 * Heavy work waits for a turn of the event loop of its own (serve/own-turn.ts): between two of them the
 * loop polls for I/O — here a byte written on a loopback socket in one turn is read before the next runs.
 */
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { expect, it } from 'vitest';
import { noteConnection, ownTurn } from '../serve/own-turn.ts';

it('runs queued heavy work one per loop turn, with the socket reads between them', async () => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  const [peer] = await accepted;
  const order: string[] = [];
  peer.on('data', (chunk: Buffer) => {
    for (const byte of chunk) order.push(`read ${String.fromCharCode(byte)}`);
  });
  try {
    // Three pieces of work queued at once, each writing its letter: without turns of their own, all three
    // would run in one microtask drain and the reads would come after.
    await Promise.all(
      ['a', 'b', 'c'].map(async (letter) => {
        await ownTurn();
        order.push(`work ${letter}`);
        client.write(letter);
      }),
    );
    while (order.length < 6) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(order).toEqual(['work a', 'read a', 'work b', 'read b', 'work c', 'read c']);
  } finally {
    client.destroy();
    peer.destroy();
    server.close();
  }
});

it('goes round the clients waiting, and drops work whose client has gone when its turn comes', async () => {
  const order: string[] = [];
  const gone = new AbortController();
  const queued = [
    ['a', 'a1'],
    ['a', 'a2'],
    ['a', 'a3'],
    ['b', 'b1'],
    ['c', 'c1'],
    ['b', 'b2'],
  ].map(([client, work]) =>
    ownTurn(client, work === 'a2' ? gone.signal : undefined).then(
      () => {
        order.push(work as string);
      },
      () => {
        order.push(`${work} dropped`);
      },
    ),
  );
  gone.abort();
  await Promise.all(queued);
  // One of a's, then b's, then c's, then a's next (its second is gone), and so on.
  expect(order).toEqual(['a1', 'b1', 'c1', 'a2 dropped', 'a3', 'b2']);
});

it('lets queued connections in before heavy work: Node accepts one per loop iteration', async () => {
  const server = createServer((socket) => socket.on('error', () => {}));
  server.on('connection', noteConnection);
  server.listen({ port: 0, host: '127.0.0.1', backlog: 1024 });
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  let accepted = 0;
  server.on('connection', () => accepted++);
  const clients: Socket[] = [];
  const acceptedBeforeWork: number[] = [];
  try {
    // 40 pieces of heavy work (5 ms each) queued, then 100 connections arriving in the kernel's queue.
    const work = Array.from({ length: 40 }, async () => {
      await ownTurn();
      acceptedBeforeWork.push(accepted);
      const end = performance.now() + 5;
      while (performance.now() < end);
    });
    for (let i = 0; i < 100; i++) clients.push(connect(port, '127.0.0.1').on('error', () => {}));
    await Promise.all(clients.map((client) => once(client, 'connect')));
    await Promise.all(work);
    // All 100 were accepted within the first pieces, as fast as this process's own clients connect (here: by
    // the 7th); with turns by immediates alone, one connection per piece: 40 pieces, 40 connections.
    expect(accepted).toBe(100);
    const piecesBeforeAll = acceptedBeforeWork.indexOf(100);
    expect(piecesBeforeAll).toBeGreaterThanOrEqual(0);
    expect(piecesBeforeAll).toBeLessThanOrEqual(15);
  } finally {
    for (const client of clients) client.destroy();
    server.close();
  }
});
