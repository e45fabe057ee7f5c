/**
 * Hand a model made in the page to the server: `PUT /api/models/<name>/versions` with the model.onnx bytes
 * (the server must run with `--allow-upload`). The server writes it as the model's next version, checks it
 * like any file in its repository, and answers with the version once it serves.
 */
export interface Published {
  model: string;
  version: number;
}

export async function publishModel(name: string, model: Uint8Array): Promise<Published> {
  // The server checks the name (and says why it refuses one).
  const response = await fetch(`/api/models/${encodeURIComponent(name)}/versions`, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream' },
    body: model as BlobPart,
  });
  if (response.status === 404) throw new Error('this server takes no models (start it with --allow-upload)');
  const body = (await response.json().catch(() => ({}))) as Partial<Published> & { error?: { message?: string } };
  if (!response.ok) throw new Error(body.error?.message ?? `HTTP ${response.status}`);
  return { model: body.model as string, version: body.version as number };
}
