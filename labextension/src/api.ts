import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** An answer of the server API that is not 2xx: `reason` is meant for the user. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string
  ) {
    super(reason);
  }
}

/** Call `{base}openbis/api/{path}` of this server (lab_api.py); JSON in, JSON out. */
export async function requestAPI<T>(path: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'openbis/api', path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(0, 'This Jupyter server cannot be reached.');
  }
  const text = await response.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const reason = data?.reason ?? data?.message ?? response.statusText;
    throw new ApiError(response.status, reason || `HTTP ${response.status}`);
  }
  return data as T;
}

export function post<T>(path: string, body: unknown): Promise<T> {
  return requestAPI<T>(path, { method: 'POST', body: JSON.stringify(body) });
}

export function query(params: Record<string, string>): string {
  return '?' + new URLSearchParams(params).toString();
}
