/**
 * Protocol Buffers text format (what a Triton `config.pbtxt` is written in), read and written against a
 * protobufjs message type: `field: value`, `field { … }` (or `< … >`), lists `field: [a, b]` and
 * `field [{…}, {…}]`, repeated fields given several times, `#` comments, enums by name.
 *
 * Reading is strict: a field the type doesn't declare, a scalar of the wrong kind, an out-of-range
 * integer or a second value for a singular field is an error naming the line, never silently dropped.
 * The result is a plain object (enums as names, 64-bit integers as numbers) ready for `Type.fromObject`.
 */
import protobuf from 'protobufjs';

/** Configs are a few KiB; refuse anything absurd before tokenizing it. */
const MAX_TEXT_LENGTH = 1 << 20;
const MAX_DEPTH = 32;

export class TextFormatError extends Error {
  override name = 'TextFormatError';
}

type TokenKind = 'word' | 'string' | 'punct';
interface Token {
  kind: TokenKind;
  text: string;
  line: number;
}

const PUNCTUATION = new Set(['{', '}', '[', ']', '<', '>', ':', ',', ';']);
const WORD = /[A-Za-z0-9_.+-]/;
const SIMPLE_ESCAPES: Record<string, number> = {
  n: 10,
  r: 13,
  t: 9,
  '\\': 92,
  "'": 39,
  '"': 34,
  a: 7,
  b: 8,
  f: 12,
  v: 11,
  '?': 63,
};

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '\n') {
      line++;
      i++;
    } else if (/\s/.test(c)) {
      i++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (PUNCTUATION.has(c)) {
      tokens.push({ kind: 'punct', text: c, line });
      i++;
    } else if (c === '"' || c === "'") {
      const [value, end] = readString(text, i, line);
      tokens.push({ kind: 'string', text: value, line });
      i = end;
    } else if (WORD.test(c)) {
      const start = i;
      while (i < text.length && WORD.test(text[i] as string)) i++;
      tokens.push({ kind: 'word', text: text.slice(start, i), line });
    } else {
      throw new TextFormatError(`line ${line}: unexpected character ${JSON.stringify(c)}`);
    }
  }
  return tokens;
}

/** A quoted string with C escapes; the bytes it spells are decoded as UTF-8. */
function readString(text: string, start: number, line: number): [string, number] {
  const quote = text[start];
  const bytes: number[] = [];
  let i = start + 1;
  while (i < text.length && text[i] !== quote) {
    const c = text[i] as string;
    if (c === '\n') break;
    if (c !== '\\') {
      bytes.push(...Buffer.from(c, 'utf8'));
      i++;
      continue;
    }
    const e = text[i + 1] ?? '';
    if (e in SIMPLE_ESCAPES) {
      bytes.push(SIMPLE_ESCAPES[e] as number);
      i += 2;
    } else if (e === 'x' && /^[0-9a-fA-F]{1,2}/.test(text.slice(i + 2, i + 4))) {
      const hex = (/^[0-9a-fA-F]{1,2}/.exec(text.slice(i + 2, i + 4)) as RegExpExecArray)[0];
      bytes.push(Number.parseInt(hex, 16));
      i += 2 + hex.length;
    } else if (/[0-7]/.test(e)) {
      const octal = (/^[0-7]{1,3}/.exec(text.slice(i + 1, i + 4)) as RegExpExecArray)[0];
      bytes.push(Number.parseInt(octal, 8) & 0xff);
      i += 1 + octal.length;
    } else {
      throw new TextFormatError(`line ${line}: unknown escape \\${e} in a string`);
    }
  }
  if (text[i] !== quote) throw new TextFormatError(`line ${line}: unterminated string`);
  return [Buffer.from(bytes).toString('utf8'), i + 1];
}

const INT_RANGES: Record<string, [number, number]> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  sint32: [-(2 ** 31), 2 ** 31 - 1],
  sfixed32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  fixed32: [0, 2 ** 32 - 1],
  // 64-bit fields are kept as JS numbers: refuse what a number can't hold exactly.
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  sint64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  sfixed64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER],
  fixed64: [0, Number.MAX_SAFE_INTEGER],
};

type Plain = Record<string, unknown>;

class Parser {
  private at = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(): Token | undefined {
    return this.tokens[this.at];
  }

  private next(what: string): Token {
    const token = this.tokens[this.at++];
    if (!token) throw new TextFormatError(`unexpected end of text, expected ${what}`);
    return token;
  }

  private accept(punct: string): boolean {
    const token = this.peek();
    if (token?.kind === 'punct' && token.text === punct) {
      this.at++;
      return true;
    }
    return false;
  }

  private expect(punct: string): void {
    const token = this.next(`'${punct}'`);
    if (token.kind !== 'punct' || token.text !== punct)
      throw new TextFormatError(`line ${token.line}: expected '${punct}', found '${token.text}'`);
  }

  /** Fields until `end` (a closing bracket, or the end of the text when undefined). */
  message(type: protobuf.Type, end: string | undefined, depth: number): Plain {
    if (depth > MAX_DEPTH) throw new TextFormatError(`messages nested deeper than ${MAX_DEPTH}`);
    const result: Plain = {};
    const oneofOwner = new Map<string, string>();
    for (;;) {
      const token = this.peek();
      if (!token) {
        if (end) throw new TextFormatError(`unexpected end of text, expected '${end}'`);
        return result;
      }
      if (end && token.kind === 'punct' && token.text === end) {
        this.at++;
        return result;
      }
      const nameToken = this.next('a field name');
      if (nameToken.kind !== 'word' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(nameToken.text))
        throw new TextFormatError(`line ${nameToken.line}: expected a field name, found '${nameToken.text}'`);
      const field = type.fields[nameToken.text];
      if (!field)
        throw new TextFormatError(`line ${nameToken.line}: unknown field '${nameToken.text}' in ${type.name}`);
      field.resolve();
      const oneof = field.partOf?.name;
      if (oneof) {
        const other = oneofOwner.get(oneof);
        if (other && other !== field.name)
          throw new TextFormatError(
            `line ${nameToken.line}: '${field.name}' and '${other}' are alternatives (${oneof})`,
          );
        oneofOwner.set(oneof, field.name);
      }
      const values = this.fieldValues(field, depth);
      if (field.repeated) {
        // Appended in place: a field repeated n times costs n, not n² (a hostile config repeats it 40,000 times).
        const list = (result[field.name] as unknown[] | undefined) ?? [];
        for (const value of values) list.push(value);
        result[field.name] = list;
      } else {
        if (field.name in result || values.length !== 1)
          throw new TextFormatError(`line ${nameToken.line}: '${field.name}' takes one value`);
        result[field.name] = values[0];
      }
      if (!this.accept(',')) this.accept(';');
    }
  }

  /** `: value`, `{…}`, or a `[…]` list: the values one occurrence of a field gives. */
  private fieldValues(field: protobuf.Field, depth: number): unknown[] {
    const isMessage = field.resolvedType instanceof protobuf.Type;
    const colon = this.accept(':');
    if (!colon && !isMessage) {
      const token = this.peek();
      throw new TextFormatError(`line ${token?.line ?? '?'}: expected ':' after '${field.name}'`);
    }
    if (this.accept('[')) {
      if (!field.repeated) throw new TextFormatError(`'${field.name}' is not a list`);
      const values: unknown[] = [];
      if (this.accept(']')) return values;
      do values.push(this.value(field, depth));
      while (this.accept(','));
      this.expect(']');
      return values;
    }
    return [this.value(field, depth)];
  }

  private value(field: protobuf.Field, depth: number): unknown {
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Type) {
      const open = this.next(`'{' for '${field.name}'`);
      if (open.kind !== 'punct' || (open.text !== '{' && open.text !== '<'))
        throw new TextFormatError(`line ${open.line}: expected '{' for '${field.name}', found '${open.text}'`);
      return this.message(resolved, open.text === '{' ? '}' : '>', depth + 1);
    }
    const token = this.next(`a value for '${field.name}'`);
    const where = `line ${token.line}: '${field.name}'`;
    if (resolved instanceof protobuf.Enum) {
      if (token.kind === 'word' && token.text in resolved.values) return token.text;
      const byNumber = /^-?\d+$/.test(token.text) ? resolved.valuesById[Number(token.text)] : undefined;
      if (token.kind === 'word' && byNumber !== undefined) return byNumber;
      throw new TextFormatError(`${where} must be one of ${Object.keys(resolved.values).join(', ')}`);
    }
    if (field.type === 'string' || field.type === 'bytes') {
      if (token.kind !== 'string') throw new TextFormatError(`${where} must be a quoted string`);
      // Adjacent literals concatenate, as in C.
      let text = token.text;
      while (this.peek()?.kind === 'string') text += this.next('a string').text;
      return text;
    }
    if (token.kind !== 'word')
      throw new TextFormatError(
        `${where} must be ${field.type === 'bool' ? 'true or false' : field.type in INT_RANGES ? 'an integer' : 'a number'}`,
      );
    if (field.type === 'bool') {
      if (['true', 'True', 't', '1'].includes(token.text)) return true;
      if (['false', 'False', 'f', '0'].includes(token.text)) return false;
      throw new TextFormatError(`${where} must be true or false`);
    }
    if (field.type === 'float' || field.type === 'double') {
      const text = token.text.replace(/[fF]$/, '');
      const number = /^-?inf(inity)?$/i.test(text) ? (text.startsWith('-') ? -Infinity : Infinity) : Number(text);
      if (Number.isNaN(number) && !/^nan$/i.test(text)) throw new TextFormatError(`${where} must be a number`);
      return number;
    }
    const range = INT_RANGES[field.type];
    if (!range) throw new TextFormatError(`${where}: unsupported field type ${field.type}`);
    const match = /^(-?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(token.text);
    if (!match) throw new TextFormatError(`${where} must be an integer`);
    const digits = match[2] as string;
    const magnitude = /^0[xX]/.test(digits)
      ? Number.parseInt(digits.slice(2), 16)
      : digits.length > 1 && digits.startsWith('0')
        ? Number.parseInt(digits, 8)
        : Number(digits);
    const number = match[1] ? -magnitude : magnitude;
    if (!Number.isSafeInteger(number) || number < range[0] || number > range[1])
      throw new TextFormatError(`${where} is out of range for ${field.type}`);
    return number;
  }
}

/** Parse text format into a plain object of `type`'s fields (strict; see the module comment). */
export function parseTextFormat(text: string, type: protobuf.Type): Plain {
  if (text.length > MAX_TEXT_LENGTH) throw new TextFormatError(`text is over ${MAX_TEXT_LENGTH} characters`);
  return new Parser(tokenize(text)).message(type, undefined, 0);
}

function quote(text: string): string {
  let out = '"';
  for (const c of text) {
    const code = c.codePointAt(0) as number;
    if (c === '"' || c === '\\') out += `\\${c}`;
    else if (c === '\n') out += '\\n';
    else if (c === '\r') out += '\\r';
    else if (c === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += c;
  }
  return `${out}"`;
}

function scalar(field: protobuf.Field, value: unknown): string {
  if (field.resolvedType instanceof protobuf.Enum) {
    const name = typeof value === 'number' ? field.resolvedType.valuesById[value] : value;
    if (typeof name !== 'string' || !(name in field.resolvedType.values))
      throw new TextFormatError(`'${field.name}': ${String(value)} is not a value of ${field.resolvedType.name}`);
    return name;
  }
  if (field.type === 'string') return quote(String(value));
  return String(value);
}

function formatFields(type: protobuf.Type, object: Plain, indent: string): string[] {
  const lines: string[] = [];
  for (const field of type.fieldsArray) {
    field.resolve();
    const value = object[field.name];
    if (value === undefined || value === null) continue;
    const message = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    const block = (inner: Plain, at: string) => {
      const body = formatFields(message as protobuf.Type, inner, `${at}  `);
      return body.length === 0 ? [`${at}{ }`] : [`${at}{`, ...body, `${at}}`];
    };
    if (field.repeated) {
      const list = value as unknown[];
      if (list.length === 0) continue;
      if (!message) {
        lines.push(`${indent}${field.name}: [ ${list.map((v) => scalar(field, v)).join(', ')} ]`);
        continue;
      }
      lines.push(`${indent}${field.name} [`);
      list.forEach((item, i) => {
        const entry = block(item as Plain, `${indent}  `);
        if (i < list.length - 1) entry[entry.length - 1] += ',';
        lines.push(...entry);
      });
      lines.push(`${indent}]`);
    } else if (message) {
      const entry = block(value as Plain, indent);
      entry[0] = `${indent}${field.name} ${(entry[0] as string).trimStart()}`;
      lines.push(...entry);
    } else {
      lines.push(`${indent}${field.name}: ${scalar(field, value)}`);
    }
  }
  return lines;
}

/** Write a plain object of `type`'s fields as text format, fields in declaration order. */
export function formatTextFormat(object: Plain, type: protobuf.Type): string {
  return `${formatFields(type, object, '').join('\n')}\n`;
}
