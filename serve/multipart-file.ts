/**
 * The one file /predict takes from a multipart body (its `file` field), parsed by busboy from bytes already
 * read within the body limit and checked by multipart-limits.ts. Node 20's `Response.formData()` refused a
 * legal body whose file merely contained its boundary text (only CRLF + "--" + boundary ends a part;
 * RFC 2046), so an upload failed or not depending on its bytes (an outside attack).
 */
import busboy from 'busboy';

export class MultipartError extends Error {
  override name = 'MultipartError';
}

/** The bytes of the `file` field of `body`, a multipart/form-data body with `boundary`; undefined without one. */
export function multipartFile(body: Uint8Array, boundary: string): Promise<Uint8Array | undefined> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: { 'content-type': `multipart/form-data; boundary="${boundary}"` } });
    } catch {
      return reject(new MultipartError('not a multipart body'));
    }
    let file: Uint8Array | undefined;
    let taken = false;
    parser.on('file', (name, stream) => {
      // A body that ends inside a file part destroys that part's stream with an error; unheard, it would be
      // an uncaught exception that ends the server. The parser's own error below carries the refusal.
      stream.on('error', () => {});
      if (name !== 'file' || taken) return void stream.resume(); // other fields, a second file: read past
      taken = true;
      const parts: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => parts.push(chunk));
      stream.on('end', () => {
        file = Buffer.concat(parts);
      });
    });
    parser.on('error', () => reject(new MultipartError('cannot parse the multipart body')));
    parser.on('close', () => resolve(file));
    parser.end(body);
  });
}
