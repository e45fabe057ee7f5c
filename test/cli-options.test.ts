/** The command line's number parsers: plain decimals only — what `Number` alone lets through is refused. */
import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import {
  fraction,
  nonNegativeInt,
  nonNegativeNumber,
  openFraction,
  port,
  positiveInt,
  positiveNumber,
  upTo,
} from '../node/cli/options.ts';

const PARSERS = { positiveInt, nonNegativeInt, positiveNumber, nonNegativeNumber, fraction, openFraction, port };

describe('number flags', () => {
  // Number('') and Number(' ') are 0, Number('0x1') is 1: each of these once trained as that value.
  for (const [name, parse] of Object.entries(PARSERS))
    it(`${name} refuses empty, blank, hex, binary, octal, separators and infinities`, () => {
      for (const value of ['', ' ', '\t', '0x1', '0b1', '0o1', '1_0', ' 1', '1 ', 'Infinity', '1e', '.', '+', 'NaN'])
        expect(() => parse(value), JSON.stringify(value)).toThrow(InvalidArgumentError);
    });

  it('takes plain decimals, signs and exponents', () => {
    expect(positiveInt('3')).toBe(3);
    expect(positiveInt('+3')).toBe(3);
    expect(positiveInt('1e3')).toBe(1000);
    expect(fraction('.5')).toBe(0.5);
    expect(fraction('0.')).toBe(0);
    expect(fraction('-0')).toBe(-0);
    expect(nonNegativeNumber('2.5E-3')).toBe(0.0025);
    expect(openFraction('0.999')).toBe(0.999);
    expect(port('0')).toBe(0);
    expect(() => fraction('1')).toThrow(InvalidArgumentError);
    expect(() => positiveInt('2.5')).toThrow(InvalidArgumentError);
    expect(() => upTo(1, nonNegativeNumber)('1.5')).toThrow(/at most 1/);
    expect(upTo(1, nonNegativeNumber)('1')).toBe(1);
  });
});
