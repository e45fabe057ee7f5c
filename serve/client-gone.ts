/**
 * Whether a request's client is still there. A connection that closes takes every request on it along — the
 * one being answered and the pipelined ones queued behind it, which Node has already handed to the app: one
 * signal per socket, aborted when it closes, tells the inference queue to drop their work unrun and the log
 * to count them as 499 (an outside attack: five pipelined requests on a connection closed at once all ran,
 * four logged as 200; 32 connections × 16 queued requests for a slow model held 1.1 GiB and ran for 16
 * minutes after their clients had gone).
 */
import { setMaxListeners } from 'node:events';
import type { Socket } from 'node:net';
import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import { CONNECTION_DEFAULTS } from './connections.ts';

const bySocket = new WeakMap<Socket, AbortSignal>();

function socketOf(c: Context): Socket | undefined {
  return (c.env as Partial<HttpBindings> | undefined)?.incoming?.socket as Socket | undefined;
}

/** Aborts when the request's connection closes (Hono's own request signal where there is no socket). */
export function clientSignal(c: Context): AbortSignal | undefined {
  const socket = socketOf(c);
  if (!socket) return c.req.raw.signal;
  let signal = bySocket.get(socket);
  if (!signal) {
    const controller = new AbortController();
    signal = controller.signal;
    // Each pipelined request on the socket listens (up to CONNECTION_DEFAULTS.pipelined, a few listeners
    // each): past Node's default of 10 it warned once per connection, as if they leaked.
    setMaxListeners(4 * CONNECTION_DEFAULTS.pipelined, signal);
    if (socket.destroyed) controller.abort();
    else socket.once('close', () => controller.abort());
    bySocket.set(socket, signal);
  }
  return signal;
}

/** The client left before its answer: its connection closed (or Hono saw the request aborted). */
export function clientGone(c: Context): boolean {
  return c.req.raw.signal?.aborted === true || socketOf(c)?.destroyed === true;
}
