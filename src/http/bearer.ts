/** Bearer-token check for operator endpoints; the token is compared in constant time. */
import { timingSafeEqual } from 'node:crypto';
import type { HttpRequest, HttpResponse } from './server.ts';

/** undefined when the request carries `token`; otherwise the response to send (404 when no token is configured). */
export function checkBearer(req: HttpRequest, token: string, settingName: string): HttpResponse | undefined {
  if (!token) return { status: 404, body: { error: 'admin_api_disabled', message: `set ${settingName} to enable` } };
  const given = /^Bearer\s+(.+)$/i.exec(String(req.headers.authorization ?? ''))?.[1] ?? '';
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    return { status: 401, body: { error: 'unauthorized' }, headers: { 'www-authenticate': 'Bearer' } };
  }
  return undefined;
}
