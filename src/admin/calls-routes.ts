/** Admin read access to the call registry: GET /calls (active), GET /calls/:callId. Bearer ADMIN_TOKEN required. */
import type { RegistryPort } from '../registry/port.ts';
import { checkBearer } from '../http/bearer.ts';
import type { HttpRequest, HttpResponse, HttpServer } from '../http/server.ts';

/** The admin API's bearer check (ADMIN_TOKEN). */
export function checkAdminToken(req: HttpRequest, token: string): HttpResponse | undefined {
  return checkBearer(req, token, 'ADMIN_TOKEN');
}

/** On a shared registry (REGISTRY_URL) these are every instance's calls; each row names its instance_id. */
export function registerCallRoutes(http: HttpServer, registry: RegistryPort, adminToken: string): void {
  http.route('GET', '/calls', async (req) => {
    const denied = checkAdminToken(req, adminToken);
    if (denied) return denied;
    const recent = req.query.get('recent');
    const calls = await (recent ? registry.recent(Math.min(1000, Number(recent) || 100)) : registry.active());
    return { status: 200, body: { calls } };
  });
  http.route('GET', '/calls/:callId', async (req) => {
    const denied = checkAdminToken(req, adminToken);
    if (denied) return denied;
    const call = await registry.get(req.params.callId ?? '');
    if (!call) return { status: 404, body: { error: 'not_found' } };
    return { status: 200, body: { call, events: await registry.events(call.call_id) } };
  });
}
