/** Commander argument parsers that turn bad values into one-line errors. */
import { InvalidArgumentError } from 'commander';

/** A plain decimal (`3`, `-0.5`, `.25`, `1e-3`), else NaN: `Number` alone reads "" and " " as 0 and takes `0x1`. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
function decimal(value: string): number {
  return DECIMAL.test(value) ? Number(value) : Number.NaN;
}

export function positiveInt(value: string): number {
  const n = decimal(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer.');
  return n;
}

/** `parse`, with an upper bound the program cannot go past, said up front: a typo fails before any work. */
export function upTo(max: number, parse: (value: string) => number) {
  return (value: string): number => {
    const n = parse(value);
    if (n > max) throw new InvalidArgumentError(`must be at most ${max}.`);
    return n;
  };
}

export function nonNegativeInt(value: string): number {
  const n = decimal(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer.');
  return n;
}

export function positiveNumber(value: string): number {
  const n = decimal(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a number > 0.');
  return n;
}

export function nonNegativeNumber(value: string): number {
  const n = decimal(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number ≥ 0.');
  return n;
}

export function fraction(value: string): number {
  const n = decimal(value);
  if (!Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError('must be in [0, 1).');
  return n;
}

export function openFraction(value: string): number {
  const n = decimal(value);
  if (!Number.isFinite(n) || n <= 0 || n >= 1) throw new InvalidArgumentError('must be in (0, 1).');
  return n;
}

export function oneOf<T extends string>(choices: readonly T[]) {
  return (value: string): T => {
    if (!choices.includes(value as T)) throw new InvalidArgumentError(`choose one of: ${choices.join(', ')}.`);
    return value as T;
  };
}

/** A TCP port, 1–65535; 0 asks for any free one. */
export function port(value: string): number {
  const n = decimal(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('must be a port number from 1 to 65535 (0: any free port).');
  return n;
}
