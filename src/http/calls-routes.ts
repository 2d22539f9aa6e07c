/** Admin read access to the call registry: GET /calls (active), GET /calls/:callId. Bearer ADMIN_TOKEN required. */
import { timingSafeEqual } from 'node:crypto';
import type { CallRegistry } from '../registry/call-registry.ts';
import type { HttpRequest, HttpResponse, HttpServer } from './server.ts';

export function checkAdminToken(req: HttpRequest, token: string): HttpResponse | undefined {
  if (!token) return { status: 404, body: { error: 'admin_api_disabled', message: 'set ADMIN_TOKEN to enable' } };
  const given = /^Bearer\s+(.+)$/i.exec(String(req.headers.authorization ?? ''))?.[1] ?? '';
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  if (a.length !== b.length || !timingSafeEqual(a, b)) return { status: 401, body: { error: 'unauthorized' }, headers: { 'www-authenticate': 'Bearer' } };
  return undefined;
}

export function registerCallRoutes(http: HttpServer, registry: CallRegistry, adminToken: string): void {
  http.route('GET', '/calls', (req) => {
    const denied = checkAdminToken(req, adminToken);
    if (denied) return denied;
    const recent = req.query.get('recent');
    const calls = recent ? registry.recent(Math.min(1000, Number(recent) || 100)) : registry.active();
    return { status: 200, body: { calls } };
  });
  http.route('GET', '/calls/:callId', (req) => {
    const denied = checkAdminToken(req, adminToken);
    if (denied) return denied;
    const call = registry.get(req.params.callId!);
    if (!call) return { status: 404, body: { error: 'not_found' } };
    return { status: 200, body: { call, events: registry.events(call.call_id) } };
  });
}
