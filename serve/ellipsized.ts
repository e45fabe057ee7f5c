/** Text of a client's or a file's cut to a length for an answer, whole characters only. */

/** Half of a character (a surrogate without its pair), as text cut to a length can end. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * `text` with each half character as U+FFFD. JSON carries one as a lone `\ud83d` escape, which strict
 * parsers refuse, and grpc-js's encodeURI of a status's details throws on one (an outside attack: a version
 * of 39 digits and an emoji, cut at 40 characters in its refusal, ended the process).
 */
export const wellFormed = (text: string) => text.replace(LONE_SURROGATE, '\uFFFD');

/** `text` cut to at most `max` characters, the last one '…' when cut: a file's own strings in bounded answers. */
export const ellipsized = (text: string, max: number) =>
  wellFormed(text.length > max ? `${text.slice(0, max - 1)}…` : text);
