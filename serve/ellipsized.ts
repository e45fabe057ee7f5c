/** `text` cut to at most `max` characters, the last one '…' when cut: a file's own strings in bounded answers. */
export const ellipsized = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
